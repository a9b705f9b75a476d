"""Evaluate a batch of trained networks and draw each one's figures; slice
the loss around the first; for networks with dropout, compare the ways to
predict with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.analysis import figures
from pipeline.analysis.dropout_at_test_time import compare
from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.loss_slices import loss_slice
from pipeline.config import DropoutAtTestTimeConfig, LossLandscapeConfig
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.network import as_tensors
from pipeline.techniques.dropout import StackedDropout


def evaluate_and_draw(trained: Trained, splits: Splits, sparsity_threshold: float, name: str,
                      curves: list[list[dict]], trainings: list[dict], directories: list[Path]) -> list[dict]:
    """Per network k: its metrics document (with trainings[k], what training
    recorded, as its "training"), and its figures drawn into directories[k]
    (learning curves from curves[k]; the decision boundary for points in the plane)."""
    documents, y_pred = evaluate(trained.net, splits, sparsity_threshold)
    grid = figures.plane(splits) if splits.n_features == 2 else None
    proba = figures.probabilities(trained.net, *grid) if grid is not None else None
    jobs = [(directories[k], name, splits, documents[k], curves[k], figures.weight_matrices(trained.net, k), y_pred[k],
             proba[k] if proba is not None else None, grid, trainings[k].get("best_step"))
            for k in range(len(documents))]
    figures.draw_networks(jobs)
    for document, training in zip(documents, trainings):
        document["training"] = training
    return documents


def dropout_at_test_time(trained: Trained, splits: Splits, config: DropoutAtTestTimeConfig) -> dict | None:
    """Networks with dropout: weight scaling, Monte Carlo dropout and the
    seeds' ensemble scored on the same random config.test_points of test (all
    of them if fewer); None for networks without dropout."""
    net = trained.net
    if not any(isinstance(layer, StackedDropout) for layer in net.layers):
        return None
    X, y = splits.X["test"], splits.y["test"]
    if len(y) > config.test_points:  # sorted: the points keep the split's order, whatever the draw
        chosen = np.sort(np.random.default_rng(0).choice(len(y), config.test_points, replace=False))
        X, y = X[chosen], y[chosen]
    x, _ = as_tensors(X, y, net.dtype)
    weight_scaled = net.log_probabilities(net.evaluated(x)).numpy()
    sampled = net.log_probabilities(net.sampled_logits(x, config.samples)).numpy()
    return compare(weight_scaled, sampled, y, config.calibration_bins) | {"seeds": list(trained.seeds)}


def loss_landscape(trained: Trained, splits: Splits, config: LossLandscapeConfig) -> dict | None:
    """The train and dev loss around the first seed's network, on the grid
    config sets (None when it sets no points)."""
    if not config.points:
        return None
    return loss_slice(trained, splits, 0, config.points, config.span, config.seed) | {"network_seed": trained.seeds[0]}
