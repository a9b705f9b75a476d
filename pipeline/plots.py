"""Decision-boundary figures of 2-D classifiers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import torch

from pipeline.atomic import atomic_path
from pipeline.datasets import Splits
from pipeline.model import MLP

RESOLUTION = 200
CMAP = "RdBu_r"


def plane(splits: Splits, margin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A grid over every point of every split, so all recipes share the axes."""
    X = np.concatenate([splits.X[part] for part in splits.X])
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    return np.meshgrid(np.linspace(lo[0], hi[0], RESOLUTION), np.linspace(lo[1], hi[1], RESOLUTION))


@torch.no_grad()
def probability_of_class_1(net: MLP, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    points = torch.as_tensor(np.c_[xx.ravel(), yy.ravel()], dtype=torch.float32)
    return net.eval().predict_proba(points)[:, 1].numpy().reshape(xx.shape)


def draw(ax, net: MLP, splits: Splits, grid: tuple[np.ndarray, np.ndarray], title: str):
    """Predicted probability heatmap, the 0.5 contour, train points (dots) and
    test points (crosses). The colour scale is fixed to [0, 1]."""
    xx, yy = grid
    proba = probability_of_class_1(net, xx, yy)
    image = ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 21), cmap=CMAP, vmin=0, vmax=1, alpha=0.8)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1)
    for part, marker in (("train", "o"), ("test", "x")):
        X, y = splits.X[part], splits.y[part]
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap=CMAP, vmin=0, vmax=1, marker=marker, s=14,
                   edgecolors="k" if marker == "o" else None, linewidths=0.4 if marker == "o" else 1, label=part)
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def title(name: str, metrics: dict) -> str:
    return f"{name}\ntrain {metrics['train']['accuracy']:.1%} / test {metrics['test']['accuracy']:.1%}"


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def decision_boundary(path: Path, net: MLP, splits: Splits, name: str, metrics: dict) -> None:
    fig, ax = plt.subplots(figsize=(5, 4.6))
    image = draw(ax, net, splits, plane(splits), title(name, metrics))
    fig.colorbar(image, ax=ax, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def decision_boundaries(path: Path, nets: dict[str, MLP], splits: Splits, metrics: dict[str, dict]) -> None:
    """All recipes side by side, on the same axes and the same colour scale."""
    grid = plane(splits)
    fig, axes = plt.subplots(1, len(nets), figsize=(3.4 * len(nets) + 0.8, 3.6), squeeze=False)
    for ax, (name, net) in zip(axes[0], nets.items()):
        image = draw(ax, net, splits, grid, title(name, metrics[name]))
    fig.colorbar(image, ax=list(axes[0]), label="P(class 1)", ticks=[0, 0.5, 1], fraction=0.02)
    save(fig, path)
