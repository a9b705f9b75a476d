"""What the weight penalties (L1, L2, elastic net) share: their schema, the
per-model sum over weight matrices of strength/m times a power of |w|, and
(L1, L2) the technique's strength keys."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import NonNegativeFloat

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


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


class WeightPenalty:
    """Per network, (K,): the sum over weight matrices l of strengths[k, l] *
    scale * sum |w|^power (power 1: L1, power 2: L2), biases included if asked.
    Matrices no network penalizes are skipped."""

    def __init__(self, strengths: torch.Tensor, scale: float, include_bias: bool, power: int):
        self.terms = [(layer, column * scale) for layer, column in enumerate(strengths.T) if column.any()]
        self.include_bias, self.power = include_bias, power

    def __call__(self, net) -> torch.Tensor | None:
        layers = net.linear_layers()
        total = None
        for index, coefficient in self.terms:
            layer = layers[index]
            params = [layer.weight, layer.bias] if self.include_bias else [layer.weight]
            size = sum((p.abs() if self.power == 1 else p.square()).sum((1, 2)) for p in params)
            total = coefficient * size if total is None else total + coefficient * size
        return total


class PenaltyTechnique(Technique):
    """L1 and L2: a PenaltyConfig's strength per weight matrix, swept along a
    path; in mode "penalty" the term strength/(power m) * sum |w|^power in the
    cost, in their other mode a step outside the gradient (L2's decoupled
    decay, L1's proximal threshold)."""

    sweeps = "strength"
    power: ClassVar[int]  # 1: L1's sum |w|, 2: L2's sum w^2 (halved, so that its gradient is strength/m * w)

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.mode = self.shared("mode")
        self.regularize_bias = self.shared("regularize_bias")
        self.strengths = batch.per_model([c.strengths(len(batch.hidden) + 1) for c in configs])
        self.term = WeightPenalty(self.strengths, 1 / (self.power * batch.n_train), self.regularize_bias, self.power)

    def penalty(self, net):
        return self.term(net) if self.mode == "penalty" else None

    def per_matrix(self, net) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, strength/m per network) for every weight matrix, and bias
        if asked: what the engine scales by lr for a step outside the gradient."""
        pairs = []
        for layer, strength in zip(net.linear_layers(), self.strengths.T):
            coefficient = strength / self.batch.n_train
            pairs += [(layer.weight, coefficient)] + ([(layer.bias, coefficient)] if self.regularize_bias else [])
        return pairs

    @classmethod
    def check(cls, config, hidden, has_dev):
        config.check_layers(cls.name, hidden)

    def strength_values(self, k):
        config = self.configs[k]
        return {"per_layer": config.per_layer} if config.per_layer is not None else {"strength": config.strength}
