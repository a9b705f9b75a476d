"""What the weight penalties (L1, L2, elastic net) share: their schema and
the per-model sum over weight matrices of strength/m times a power of |w|."""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat

from pipeline.core.schema import Schema


class PenaltyConfig(Schema):
    """A weight penalty: one strength for every weight matrix, or one per matrix
    (per_layer, input to output). Biases are left alone unless regularize_bias."""

    strength: NonNegativeFloat
    per_layer: list[NonNegativeFloat] | None = None
    regularize_bias: bool = False

    def strengths(self, n_matrices: int) -> list[float]:
        return list(self.per_layer) if self.per_layer is not None else [self.strength] * n_matrices

    def check_layers(self, name: str, hidden: list[int]) -> None:
        n_matrices = len(hidden) + 1
        if self.per_layer is not None and len(self.per_layer) != n_matrices:
            raise ValueError(
                f"{name}.per_layer has {len(self.per_layer)} values but the network has {n_matrices} weight "
                f"matrices (model.hidden has {len(hidden)} layers, plus the output)")


def weight_term(net, strengths: torch.Tensor, scale: float, include_bias: bool, power: int) -> torch.Tensor | None:
    """Per model, (K,): sum over weight matrices l of strengths[k, l] * scale *
    sum |w|^power (power 1: L1, power 2: L2), biases included if asked."""
    total = None
    for layer, strength in zip(net.linear_layers(), strengths.T):
        if not strength.any():
            continue
        params = [layer.weight, layer.bias] if include_bias else [layer.weight]
        size = sum((p.abs() if power == 1 else p.square()).flatten(1).sum(1) for p in params)
        term = strength * scale * size
        total = term if total is None else total + term
    return total
