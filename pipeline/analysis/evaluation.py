"""Measure trained networks on the splits: accuracy and loss per split,
precision and recall per class on test, and the weight figures: one metrics
document per network."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.analysis.weights import weight_figures
from pipeline.data.splits import SPLITS, Splits
from pipeline.engine.network import StackedNetwork, as_tensors


def measure(net: StackedNetwork, splits: Splits) -> list[dict[str, dict[str, float]]]:
    """Per network: accuracy (a fraction) and mean cross-entropy on every non-empty split."""
    per_split = {part: net.measure(*as_tensors(splits.X[part], splits.y[part], net.dtype))
                 for part in SPLITS if len(splits.y[part])}
    return [{part: {name: value[k].item() for name, value in metrics.items()} for part, metrics in per_split.items()}
            for k in range(net.k)]


@torch.no_grad()
def predict(net: StackedNetwork, X: np.ndarray) -> np.ndarray:
    """Class indices (K, n) the networks predict for the rows of X."""
    return net.predict(net.evaluated(torch.as_tensor(X, dtype=net.dtype))).numpy()


def per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall and support of each class (scikit-learn's; 0 where a class is never predicted)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(classes)), zero_division=0)
    return {f"{label:g}": {"precision": float(p), "recall": float(r), "support": int(s)}
            for label, p, r, s in zip(classes, precision, recall, support)}


def evaluate(net: StackedNetwork, splits: Splits, sparsity_threshold: float) -> tuple[list[dict], np.ndarray]:
    """Per network, the metrics document {train, dev, test: {accuracy, loss},
    per_class, weights}; and the test predictions (K, n)."""
    measured = measure(net, splits)
    weights = weight_figures(net, sparsity_threshold)
    y_pred = predict(net, splits.X["test"])
    documents = [m | {"per_class": per_class(splits.y["test"], y_pred[k], splits.classes), "weights": weights[k]}
                 for k, m in enumerate(measured)]
    return documents, y_pred
