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
def probabilities(net: MLP, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Class probabilities over the grid, shape (rows, columns, classes)."""
    points = torch.as_tensor(np.c_[xx.ravel(), yy.ravel()], dtype=torch.float32)
    return net.eval().predict_proba(points).numpy().reshape(*xx.shape, -1)


def draw(ax, net: MLP, splits: Splits, grid: tuple[np.ndarray, np.ndarray], title: str):
    """Two classes: the heatmap of P(class 1) on a fixed [0, 1] scale and its 0.5
    contour. More classes: the predicted class, shaded by its probability.
    Train points are dots, test points crosses, coloured by their true class."""
    xx, yy = grid
    proba = probabilities(net, xx, yy)
    k = proba.shape[-1]
    if k == 2:
        cmap, vmax = CMAP, 1
        image = ax.contourf(xx, yy, proba[..., 1], levels=np.linspace(0, 1, 21), cmap=cmap, vmin=0, vmax=1,
                            alpha=0.8)
        ax.contour(xx, yy, proba[..., 1], levels=[0.5], colors="k", linewidths=1)
    else:
        cmap, vmax = plt.get_cmap("tab10", 10), 9
        predicted = proba.argmax(-1)
        image = ax.imshow(cmap(predicted / vmax), origin="lower", aspect="auto", alpha=0.5,
                          extent=(xx.min(), xx.max(), yy.min(), yy.max()))
        ax.imshow(np.dstack([np.ones_like(xx)] * 3 + [1 - proba.max(-1)]), origin="lower", aspect="auto",
                  extent=(xx.min(), xx.max(), yy.min(), yy.max()))  # paler where the net is unsure
        ax.contour(xx, yy, predicted, levels=np.arange(k) + 0.5, colors="k", linewidths=0.8)
    for part, marker in (("train", "o"), ("test", "x")):
        X, y = splits.X[part], splits.y[part]
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=0, vmax=vmax, marker=marker, s=14,
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
    if net.n_classes == 2:
        fig.colorbar(image, ax=ax, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
    ax.legend(loc="lower right", fontsize=8)
    save(fig, path)


def decision_boundaries(path: Path, nets: dict[str, MLP], splits: Splits, metrics: dict[str, dict]) -> None:
    """All recipes side by side, on the same axes and the same colour scale."""
    grid = plane(splits)
    fig, axes = plt.subplots(1, len(nets), figsize=(3.4 * len(nets) + 0.8, 3.6), squeeze=False)
    for ax, (name, net) in zip(axes[0], nets.items()):
        image = draw(ax, net, splits, grid, title(name, metrics[name]))
    if net.n_classes == 2:
        fig.colorbar(image, ax=list(axes[0]), label="P(class 1)", ticks=[0, 0.5, 1], fraction=0.02)
    save(fig, path)
