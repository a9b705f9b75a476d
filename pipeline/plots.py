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
    points = torch.as_tensor(np.c_[xx.ravel(), yy.ravel()], dtype=net.dtype)
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


# --- figures for every data set -------------------------------------------------


def confusion_matrix(path: Path, y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, name: str) -> None:
    """Test-set counts, true class down, predicted class across."""
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * max(k, 4), 1.0 + 0.45 * max(k, 4)))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=np.arange(k), display_labels=[f"{c:g}" for c in classes], ax=ax, colorbar=False,
        cmap="Blues",
    )
    ax.set_title(f"{name}: test confusion matrix", fontsize=9)
    save(fig, path)


def weight_histogram(path: Path, net: MLP, name: str) -> None:
    """Every weight matrix's values, log-scaled counts: L1's spike at zero,
    L2's and max-norm's narrower spread show here."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    layers = net.linear_layers()
    values = [layer.weight.detach().double().numpy().ravel() for layer in layers]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=60)
    # outlines, one per matrix: far cheaper to draw than filled bars
    ax.hist(values, bins=edges, histtype="step", label=[f"W{i + 1}" for i in range(len(layers))])
    ax.set_yscale("log")
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(f"{name}: weights", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, path)


def learning_curves(path: Path, history: dict[str, list[tuple[int, float]]], name: str) -> None:
    """Train and dev loss and accuracy against the gradient step, as logged
    during training: where dev stops improving, and how far train runs ahead."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        for part, style in (("train", "-"), ("dev", "--")):
            points = history.get(f"{part}_{quantity}", [])
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, label=part)
        ax.set_xlabel("gradient step")
        ax.set_ylabel(quantity)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"{name}: learning curves", fontsize=9)
    save(fig, path)


# --- figures for image data sets -------------------------------------------------


def misclassified(path: Path, images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray,
                  shape: tuple[int, int], name: str, limit: int = 32) -> None:
    """The first `limit` misclassified test images, titled true -> predicted."""
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i].reshape(shape), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{classes[y_true[i]]:g} → {classes[y_pred[i]]:g}", fontsize=8)
    shown = f"first {len(wrong)} of" if len(wrong) < (y_true != y_pred).sum() else "all"
    fig.suptitle(f"{name}: {shown} {(y_true != y_pred).sum()} misclassified test images (true → predicted)",
                 fontsize=9)
    save(fig, path)


def first_layer_grid(axes_row, weights: np.ndarray, shape: tuple[int, int]) -> None:
    """Each first-layer unit's incoming weights as an image, on a symmetric scale
    shared by the row, so units of one network compare directly."""
    scale = np.abs(weights).max() or 1.0
    for ax in axes_row:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, unit in zip(axes_row, weights):
        ax.imshow(unit.reshape(shape), cmap="RdBu_r", vmin=-scale, vmax=scale)


def first_layer_weights(path: Path, net: MLP, shape: tuple[int, int], name: str, limit: int = 32) -> None:
    weights = net.linear_layers()[0].weight.detach().double().numpy()[:limit]
    columns = 8
    rows = -(-len(weights) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.0, rows * 1.0 + 0.4), squeeze=False)
    first_layer_grid(axes.ravel(), weights, shape)
    fig.suptitle(f"{name}: first-layer weights of {len(weights)} units (red +, blue −)", fontsize=9)
    save(fig, path)


def first_layer_comparison(path: Path, nets: dict[str, MLP], shape: tuple[int, int], units: int = 10) -> None:
    """One row per recipe: the first units' incoming weights, for the report."""
    fig, axes = plt.subplots(len(nets), units, figsize=(units * 0.9 + 1.5, len(nets) * 0.95), squeeze=False)
    for row, (recipe, net) in zip(axes, nets.items()):
        first_layer_grid(row, net.linear_layers()[0].weight.detach().double().numpy()[:units], shape)
        row[0].set_ylabel(recipe, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("first-layer weights per recipe (each row on its own symmetric scale)", fontsize=9)
    save(fig, path)


def warm_up() -> None:
    """Draw one small figure of every kind the stages draw, into memory.

    The warm worker (pipeline.warm) calls this before it forks stages: fonts,
    text layout, mathtext tick labels and scikit-learn's display then come
    ready-made in every stage, which saves about two seconds per stage.
    Pure numpy: the worker must not start torch's thread pools before forking."""
    import io

    from sklearn.metrics import ConfusionMatrixDisplay

    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 3, figsize=(6, 2))
    axes[0].hist([rng.normal(size=100)] * 2, bins=10, histtype="step", label=["W1", "W2"])
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    grid = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
    image = axes[1].contourf(*grid, grid[0], levels=np.linspace(0, 1, 21), cmap=CMAP)
    axes[1].contour(*grid, grid[0], levels=[0.5], colors="k")
    fig.colorbar(image, ax=axes[1])
    axes[0].plot([0, 1], [1, 0], "--", label="dev")
    axes[2].imshow(grid[0], cmap="gray_r")
    ConfusionMatrixDisplay.from_predictions([0, 1, 1], [0, 1, 0], ax=axes[2], colorbar=False)
    fig.suptitle("warm-up → −", fontsize=9)
    fig.savefig(io.BytesIO(), format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
