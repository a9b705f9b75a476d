"""Evaluate a batch of trained networks and draw each one's figures."""

from __future__ import annotations

from pathlib import Path

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained


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
