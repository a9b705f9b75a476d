"""Figures read off a trained network's weights: how sparse they are and how
large each neuron's incoming weight vector is."""

from __future__ import annotations

import torch

from pipeline.model import MLP


@torch.no_grad()
def weight_figures(net: MLP, sparsity_threshold: float) -> dict[str, float]:
    """Sparsity (share of |w| below the threshold) per weight matrix and overall;
    max and mean norm of the neurons' incoming weight vectors (torch stores them
    as rows of the out x in matrix: the columns of the papers' in x out W);
    the sum of squared weights. Biases are not counted."""
    weights = [layer.weight for layer in net.linear_layers()]
    figures = {}
    for i, w in enumerate(weights, start=1):
        figures[f"sparsity_layer_{i}"] = (w.abs() < sparsity_threshold).double().mean().item()
    every = torch.cat([w.flatten() for w in weights])
    figures["sparsity"] = (every.abs() < sparsity_threshold).double().mean().item()
    norms = torch.cat([w.norm(dim=1) for w in weights])
    figures["max_column_norm"] = norms.max().item()
    figures["mean_column_norm"] = norms.mean().item()
    figures["squared_weight_sum"] = every.pow(2).sum().item()
    return figures
