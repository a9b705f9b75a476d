"""Figures read off networks' weights: how sparse they are, how large each
neuron's incoming weight vector is, the sum of squares; at the end of
training and at the steps the engine recorded during it."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.engine.network import StackedNetwork

# The statistic each technique acts on, as the paths and the figures of weights over training name them.
STATISTICS = ("squared_weight_sum", "sparsity", "zero_fraction", "max_column_norm")


@torch.no_grad()
def weight_statistics(matrices: list[torch.Tensor], sparsity_threshold: float) -> list[dict[str, float]]:
    """Per network, from its weight matrices (each (K, in, out); biases are not
    counted): sparsity (share of |w| below the threshold) per matrix and
    overall, the share exactly zero, the max and mean norm of the neurons'
    incoming weight vectors (the columns), and the sum of squared weights."""
    k = len(matrices[0])
    every = torch.cat([w.reshape(k, -1) for w in matrices], 1)
    norms = torch.cat([w.norm(dim=1) for w in matrices], 1)
    columns = {
        **{f"sparsity_layer_{i}": (w.reshape(k, -1).abs() < sparsity_threshold).double().mean(1)
           for i, w in enumerate(matrices, start=1)},
        "sparsity": (every.abs() < sparsity_threshold).double().mean(1),
        "zero_fraction": (every == 0).double().mean(1),
        "max_column_norm": norms.amax(1),
        "mean_column_norm": norms.mean(1),
        "squared_weight_sum": every.pow(2).sum(1),
    }
    return [{name: column[j].item() for name, column in columns.items()} for j in range(k)]


def weight_figures(net: StackedNetwork, sparsity_threshold: float) -> list[dict[str, float]]:
    """weight_statistics of each trained network."""
    return weight_statistics([layer.weight for layer in net.linear_layers()], sparsity_threshold)


def statistics_during_training(snapshots: dict[int, list[np.ndarray]],
                               sparsity_threshold: float) -> dict[int, list[dict[str, float]]]:
    """step -> per network, weight_statistics of the weights recorded then."""
    return {step: weight_statistics([torch.as_tensor(w) for w in matrices], sparsity_threshold)
            for step, matrices in snapshots.items()}
