"""Figures read off trained networks' weights: how sparse they are and how
large each neuron's incoming weight vector is."""

from __future__ import annotations

import torch

from pipeline.engine.network import StackedNetwork


@torch.no_grad()
def weight_figures(net: StackedNetwork, sparsity_threshold: float) -> list[dict[str, float]]:
    """Per network: sparsity (share of |w| below the threshold) per weight matrix
    and overall; max and mean norm of the neurons' incoming weight vectors (the
    columns of the in x out W); the sum of squared weights. Biases are not counted."""
    figures = []
    for k in range(net.k):
        weights = [layer.weight[k] for layer in net.linear_layers()]
        entry = {f"sparsity_layer_{i}": (w.abs() < sparsity_threshold).double().mean().item()
                 for i, w in enumerate(weights, start=1)}
        every = torch.cat([w.flatten() for w in weights])
        norms = torch.cat([w.norm(dim=0) for w in weights])
        entry |= {
            "sparsity": (every.abs() < sparsity_threshold).double().mean().item(),
            "max_column_norm": norms.max().item(),
            "mean_column_norm": norms.mean().item(),
            "squared_weight_sum": every.pow(2).sum().item(),
        }
        figures.append(entry)
    return figures
