"""The figures: decision boundaries of 2-D classifiers, learning curves,
confusion matrices, weight histograms, image figures, and regularization paths."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pipeline.analysis.regularization_path import over_training
from pipeline.core.atomic import atomic_path
from pipeline.data.splits import Splits
from pipeline.engine.network import StackedNetwork

RESOLUTION = 200
CMAP = "RdBu_r"
TEST_POINTS_SHOWN = 400  # a large test set would bury the boundary under its crosses
PLANE_MARGIN = 0.05  # share of the data's range left around the points: they fill the plane at any scale
MAX_COLUMNS = 4  # comparison grids wrap here, so eleven recipes stay readable at MLflow's width
NEUTRAL = "0.6"  # grey of the legend's train and test markers: the marker shape tells the split, not the colour
POINT_EDGE = "k"


def plane(splits: Splits, margin: float = PLANE_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """A grid over every point of every split, so all recipes share the axes;
    the margin is a share of the data's range, so small coordinates are not
    lost in the middle of the plane."""
    X = np.concatenate([splits.X[part] for part in splits.X])
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad
    return np.meshgrid(np.linspace(lo[0], hi[0], RESOLUTION), np.linspace(lo[1], hi[1], RESOLUTION))


@torch.no_grad()
def probabilities(net: StackedNetwork, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Every network's class probabilities over the grid, (K, rows, columns, classes)."""
    points = torch.as_tensor(np.c_[xx.ravel(), yy.ravel()], dtype=net.dtype)
    return net.eval().predict_proba(points).numpy().reshape(net.k, *xx.shape, -1)


def class_colors(k: int) -> np.ndarray:
    """RGBA per class. Two classes take the heatmap's own blue and red, so a
    point on the other colour's side is visibly wrong; more classes tab10's."""
    if k == 2:
        return plt.get_cmap(CMAP)([0.08, 0.92])
    return plt.get_cmap("tab10")(np.arange(k) % 10)


def draw(ax, proba: np.ndarray, splits: Splits, grid: tuple[np.ndarray, np.ndarray], y_pred: np.ndarray):
    """Two classes: a pale heatmap of P(class 1) on a fixed [0, 1] scale and its
    0.5 contour. More classes: the predicted class, paler where the net is unsure.
    Train points are dots, test points crosses, in their true class's colour
    with dark edges (visible on their own class's side); rings mark the test
    points the network gets wrong (y_pred, its test predictions)."""
    xx, yy = grid
    k = proba.shape[-1]
    colors = class_colors(k)
    if k == 2:
        image = ax.contourf(xx, yy, proba[..., 1], levels=np.linspace(0, 1, 21), cmap=CMAP, vmin=0, vmax=1,
                            alpha=0.45)
        ax.contour(xx, yy, proba[..., 1], levels=[0.5], colors="k", linewidths=1)
    else:
        predicted = proba.argmax(-1)
        extent = (xx.min(), xx.max(), yy.min(), yy.max())
        image = ax.imshow(colors[predicted], origin="lower", alpha=0.5, extent=extent)
        ax.imshow(np.dstack([np.ones_like(xx)] * 3 + [1 - proba.max(-1)]), origin="lower", extent=extent)
        ax.contour(xx, yy, predicted, levels=np.arange(k) + 0.5, colors="k", linewidths=0.8)
    for part, marker, size in (("train", "o", 16), ("test", "X", 30)):
        X, y = splits.X[part][:TEST_POINTS_SHOWN], splits.y[part][:TEST_POINTS_SHOWN]
        ax.scatter(X[:, 0], X[:, 1], c=colors[y], marker=marker, s=size, edgecolors=POINT_EDGE, linewidths=0.5,
                   label=part)
    X_test, y_test = splits.X["test"][:TEST_POINTS_SHOWN], splits.y["test"][:TEST_POINTS_SHOWN]
    wrong = y_pred[:TEST_POINTS_SHOWN] != y_test
    ax.scatter(X_test[wrong, 0], X_test[wrong, 1], s=110, facecolors="none", edgecolors=POINT_EDGE, linewidths=1.1,
               label="misclassified (test)")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    ax.set_aspect("equal")  # circles stay circles
    ax.set_xlabel("x1", labelpad=1)
    ax.set_ylabel("x2", labelpad=1)
    ax.tick_params(labelsize=8)
    ax.locator_params(nbins=6)  # enough to read coordinates off; each tick costs drawing time
    return image


def boundary_legend(splits: Splits) -> list:
    """Legend entries: the splits by marker shape in neutral grey, the ring,
    and each class by its colour."""

    def shown(part: str) -> str:
        n = len(splits.y[part])
        return part if n <= TEST_POINTS_SHOWN else f"{part} (first {TEST_POINTS_SHOWN} of {n})"

    neutral = {"linestyle": "", "markerfacecolor": NEUTRAL, "markeredgecolor": POINT_EDGE, "markeredgewidth": 0.5}
    return [Line2D([], [], marker="o", markersize=5, label=shown("train"), **neutral),
            Line2D([], [], marker="X", markersize=7, label=shown("test"), **neutral),
            Line2D([], [], linestyle="", marker="o", markersize=10, markerfacecolor="none",
                   markeredgecolor=POINT_EDGE, markeredgewidth=1.1, label="misclassified (test)"),
            *(Patch(facecolor=color, edgecolor=POINT_EDGE, linewidth=0.5, label=f"class {c:g}")
              for c, color in zip(splits.classes, class_colors(splits.n_classes)))]


def title(name: str, metrics: dict) -> str:
    return f"{name}\ntrain {metrics['train']['accuracy']:.1%} / test {metrics['test']['accuracy']:.1%}"


def plain_log_ticks(axis) -> None:
    """Log-axis ticks at powers of ten labelled 0.01, 1, 100 rather than as
    typeset powers: easier to read, and the typesetting (and the minor ticks)
    cost most of a small figure's drawing time."""
    axis.set_minor_locator(matplotlib.ticker.NullLocator())
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))


def save(fig: Figure, path: Path, tight: bool = True) -> Figure:
    """tight=False for the figures every network gets: a tight bounding box
    draws the figure twice, and their margins are set by hand instead.
    Returns the figure, drawn and closed, for inspection."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return fig


def decision_boundary(path: Path, proba: np.ndarray, grid, splits: Splits, name: str, metrics: dict,
                      y_pred: np.ndarray) -> Figure:
    """One network's predicted probabilities (rows, columns, classes) over the
    grid and its test predictions y_pred. The figure takes the plane's shape
    (margins in inches), so the equal-aspect plane wastes no space."""
    xx, yy = grid
    width = 3.8
    height = float(np.clip(width * np.ptp(yy) / np.ptp(xx), 2.4, 4.8))
    left, right, bottom, top = 0.6, 1.0 if splits.n_classes == 2 else 0.25, 1.1, 0.5
    fig = plt.figure(figsize=(left + width + right, bottom + height + top))
    figure_width, figure_height = fig.get_size_inches()
    ax = fig.add_axes((left / figure_width, bottom / figure_height, width / figure_width, height / figure_height))
    image = draw(ax, proba, splits, grid, y_pred)
    # y given: left to itself, matplotlib measures every tick label of the plane and the colour bar to place it
    ax.set_title(title(name, metrics), fontsize=9, y=1.0)
    if splits.n_classes == 2:  # beside the plane as drawn, however equal aspect shrank it
        fig.colorbar(image, cax=ax.inset_axes((1.04, 0, 0.05, 1)), label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
    fig.legend(handles=boundary_legend(splits), loc="lower center", ncol=2, fontsize=8, frameon=False,
               columnspacing=2, handletextpad=0.4)  # two or three classes: markers in one column, classes in the other
    return save(fig, path, tight=False)


def panel_grid(n: int, panel_size: tuple[float, float], extra: tuple[float, float], layout: str
               ) -> tuple[Figure, list]:
    """n panels sharing both axes, in rows of at most MAX_COLUMNS; the last
    row's empty slots are removed and the panels above them get x tick labels."""
    columns = min(n, MAX_COLUMNS)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * panel_size[0] + extra[0],
                                                     rows * panel_size[1] + extra[1]),
                             sharex=True, sharey=True, squeeze=False, layout=layout)
    for ax in axes.flat[n:]:
        ax.remove()
    if rows > 1:
        for ax in axes[-2, n - (rows - 1) * columns:]:
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, list(axes.flat[:n])


def label_outer(panels: list, xlabel: str, ylabel: str) -> None:
    """Axis labels on panel_grid's bottom panel of each column and on its first column only."""
    columns = min(len(panels), MAX_COLUMNS)
    for i, ax in enumerate(panels):
        ax.set_xlabel(xlabel if i + columns >= len(panels) else None)
        ax.set_ylabel(ylabel if i % columns == 0 else None)


def decision_boundaries(path: Path, probas: dict[str, np.ndarray], grid, splits: Splits,
                        metrics: dict[str, dict], y_preds: dict[str, np.ndarray],
                        heading: str = "decision boundaries, first seed of every recipe") -> Figure:
    """Networks (recipes, or one recipe's strengths) on the same axes and
    colour scale, in a grid, with one colour bar and one legend; y_preds are
    each one's test predictions."""
    xx, yy = grid
    panel_width = 3.0
    panel_height = float(np.clip(panel_width * np.ptp(yy) / np.ptp(xx), 1.8, 3.6)) + 0.5  # + title
    fig, axes = panel_grid(len(probas), (panel_width, panel_height), (0.9, 0.9), layout="compressed")
    for ax, (name, proba) in zip(axes, probas.items()):
        image = draw(ax, proba, splits, grid, y_preds[name])
        ax.set_title(title(name, metrics[name]), fontsize=11)
    label_outer(axes, "x1", "x2")
    if splits.n_classes == 2:
        fig.colorbar(image, ax=axes, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1], shrink=0.6, aspect=30)
    fig.legend(handles=boundary_legend(splits), loc="outside lower center", ncol=min(3 + splits.n_classes, 6),
               fontsize=10, frameon=False)
    fig.suptitle(heading, fontsize=12)
    return save(fig, path)


# --- figures for every data set -------------------------------------------------


def confusion_matrix(path: Path, y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, name: str) -> None:
    """Test-set counts, true class down, predicted class across."""
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * max(k, 4), 1.0 + 0.45 * max(k, 4)))
    fig.subplots_adjust(left=0.2, right=0.95, bottom=0.2, top=0.88)
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=np.arange(k), display_labels=[f"{c:g}" for c in classes], ax=ax, colorbar=False,
        cmap="Blues",
    )
    ax.set_title(f"{name}: test confusion matrix", fontsize=9)
    save(fig, path, tight=False)


def weight_histogram(path: Path, weights: list[np.ndarray], name: str) -> Figure:
    """Every weight matrix's values, log-scaled counts: L1's spike at zero,
    L2's and max-norm's narrower spread show here (on one network's own range;
    the report's weight_histograms compares recipes on a shared one)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.15, top=0.9)
    values = [w.ravel() for w in weights]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=60)
    for i, matrix in enumerate(values):  # outlines, one per matrix: cheaper to draw than bars
        ax.stairs(np.histogram(matrix, edges)[0], edges, label=f"W{i + 1}")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.set_title(f"{name}: weights", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, path, tight=False)


WEIGHT_BINS = 81  # odd: the middle bin is centred on zero, where L1 piles its weights


def weight_histograms(path: Path, weights: dict[str, list[np.ndarray]], metrics: dict[str, dict]) -> Figure:
    """Every recipe's weight matrices, a panel each, on one symmetric range
    with the same bins and counts axis: L2's shrinkage and L1's spike at zero
    compare at a glance instead of by reading each panel's ticks. Titles give
    the sum of squared weights and the sparsity from each recipe's metrics."""
    reach = max(float(np.abs(w).max()) for matrices in weights.values() for w in matrices) or 1.0
    edges = np.linspace(-reach, reach, WEIGHT_BINS + 1)
    fig, axes = panel_grid(len(weights), (2.9, 2.2), (1.0, 0.8), layout="constrained")
    for ax, (recipe, matrices) in zip(axes, weights.items()):
        for i, matrix in enumerate(matrices):
            ax.stairs(np.histogram(matrix, edges)[0], edges, label=f"W{i + 1}")
        ax.axvline(0, color="0.75", linewidth=0.6, zorder=0)
        measured = metrics[recipe]["weights"]
        ax.set_title(f"{recipe}\nsum W² {measured['squared_weight_sum']:.1f}, sparsity {measured['sparsity']:.0%}",
                     fontsize=10)
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    label_outer(axes, "weight value", "count")
    layers = axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=layers, loc="outside lower center", ncol=len(layers), fontsize=10, frameon=False)
    fig.suptitle("weights of every recipe (first seed): same range, same bins", fontsize=12)
    return save(fig, path)


def learning_curves(path: Path, curve: list[dict[str, float]], name: str, best_step: int | None = None
                    ) -> Figure:
    """Train and dev loss and accuracy against the gradient step, as evaluated
    during training: where dev stops improving, and how far train runs ahead.
    best_step: the step early stopping kept the weights of, marked on both panels."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.86, wspace=0.25)
    steps = [point["step"] for point in curve]
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        for part, style in (("train", "-"), ("dev", "--")):
            key = f"{part}_{quantity}"
            if curve and key in curve[0]:
                ax.plot(steps, [point[key] for point in curve], style, label=part)
        if best_step is not None:
            ax.axvline(best_step, color="k", linestyle=":", linewidth=1, label=f"best step {best_step} (kept)")
        ax.set_xlabel("gradient step")
        ax.set_ylabel(quantity)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"{name}: learning curves", fontsize=9)
    return save(fig, path, tight=False)


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


def first_layer_weights(path: Path, weights: np.ndarray, shape: tuple[int, int], name: str, limit: int = 32) -> None:
    """The first `limit` units' incoming weights (units, pixels), each as an image."""
    weights = weights[:limit]
    columns = 8
    rows = -(-len(weights) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.0, rows * 1.0 + 0.4), squeeze=False)
    first_layer_grid(axes.ravel(), weights, shape)
    fig.suptitle(f"{name}: first-layer weights of {len(weights)} units (red +, blue −)", fontsize=9)
    save(fig, path)


def first_layer_comparison(path: Path, weights: dict[str, np.ndarray], shape: tuple[int, int], units: int = 10
                           ) -> None:
    """One row per recipe: the first units' incoming weights, for the report."""
    fig, axes = plt.subplots(len(weights), units, figsize=(units * 0.9 + 1.5, len(weights) * 0.95), squeeze=False)
    for row, (recipe, first_layer) in zip(axes, weights.items()):
        first_layer_grid(row, first_layer[:units], shape)
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

    fig, axes = plt.subplots(1, 3, figsize=(6, 2))
    axes[0].stairs(np.arange(10) + 1, np.arange(11), label="W1")
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


# --- regularization paths ---------------------------------------------------------

PART_STYLES = {"train": ("tab:blue", "-"), "dev": ("tab:orange", "--"), "test": ("tab:green", ":")}
STATISTIC_LABELS = {"squared_weight_sum": "sum of squared weights", "sparsity": "sparsity (share |w| < threshold)",
                    "max_column_norm": "largest incoming-weight norm"}


def regularization_path(path: Path, summary: list[dict], title: str, swept: str, statistic: str,
                        selected: float | None, one_se: float | None = None) -> None:
    """Accuracy and loss of train, dev and test against the swept value (log
    axis), each a mean line in a band of its 95% interval over seeds; the
    weight statistic the technique acts on below, after training and at each
    step the weights were recorded (from dark to light); the values chosen on
    dev marked: the best, and the one-standard-error choice."""
    strengths = np.array([s["strength"] for s in summary])
    fig, axes = plt.subplots(3, 1, figsize=(6, 8), sharex=True, height_ratios=[3, 2, 2])
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.07, top=0.94, hspace=0.08)

    def band(ax, key, color, style, label):
        estimates = [s[key] for s in summary]
        if estimates[0] is None:
            return
        mean = np.array([e["mean"] for e in estimates])
        ax.plot(strengths, mean, style, color=color, marker="o", markersize=3, label=label)
        if estimates[0]["ci95_low"] is not None:
            ax.fill_between(strengths, [e["ci95_low"] for e in estimates], [e["ci95_high"] for e in estimates],
                            color=color, alpha=0.2, linewidth=0)

    for ax, quantity in zip(axes, ("accuracy", "loss")):
        for part, (color, style) in PART_STYLES.items():
            band(ax, f"{part}_{quantity}", color, style, part)
        ax.set_ylabel(quantity)
        ax.legend(fontsize=8)
    during = [over_training(s, statistic) for s in summary]
    steps = sorted(during[0])
    for step, colour in zip(steps, plt.get_cmap("viridis")(np.linspace(0, 0.92, len(steps)))):
        if step != steps[-1]:  # the last record is the trained network's, drawn below with its interval
            axes[2].plot(strengths, [d[step]["mean"] for d in during], color=colour, linewidth=0.9,
                         label=f"step {step}")
    band(axes[2], statistic, "tab:gray", "-", "after training" if steps else statistic)
    if steps:
        axes[2].legend(fontsize=6, ncol=2)
    axes[2].set_ylabel(STATISTIC_LABELS.get(statistic, statistic), fontsize=8)
    axes[2].set_xlabel(swept)
    for ax in axes:
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
        if selected is not None:
            ax.axvline(selected, color="k", linewidth=0.8, linestyle="-.")
        if one_se is not None and one_se != selected:
            ax.axvline(one_se, color="tab:purple", linewidth=0.8, linestyle=":")
    if selected is not None:
        axes[0].annotate(f"best on dev: {selected:g}", (selected, 1), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=8)
    if one_se is not None:
        axes[0].annotate(f"1-SE choice: {one_se:g}", (one_se, 1), xycoords=("data", "axes fraction"),
                         xytext=(3, -24), textcoords="offset points", fontsize=8, color="tab:purple")
    n = summary[0]["train_accuracy"]["n"]
    fig.suptitle(f"{title}: mean and 95% interval over {n} seeds", fontsize=10)
    save(fig, path, tight=False)


def network_figures(directory: Path, name: str, splits: Splits, document: dict, curve: list[dict],
                    weights: list[np.ndarray], y_pred: np.ndarray, proba: np.ndarray | None, grid,
                    best_step: int | None = None) -> None:
    """The figures of one evaluated network that fit its data: learning curves
    (best_step marked if early stopping kept it), confusion matrix and weight
    histogram for all; a decision boundary (proba over grid, y_pred the test
    predictions) for points in the plane; misclassified test images and
    first-layer weights for images."""
    X_test, y_test = splits.X["test"], splits.y["test"]
    learning_curves(directory / "learning_curves.png", curve, name, best_step)
    confusion_matrix(directory / "confusion_matrix.png", y_test, y_pred, splits.classes, name)
    weight_histogram(directory / "weight_histogram.png", weights, name)
    if proba is not None:
        decision_boundary(directory / "decision_boundary.png", proba, grid, splits, name, document, y_pred)
    if splits.image_shape is not None:
        shape = splits.image_shape
        misclassified(directory / "misclassified.png", X_test, y_test, y_pred, splits.classes, shape, name)
        first_layer_weights(directory / "first_layer_weights.png", weights[0].T, shape, name)


def draw_networks(jobs: list[tuple]) -> None:
    """network_figures(*job) for every job, spread over the machine's cores:
    drawing is most of an evaluation's time. Forked workers inherit the
    loaded libraries; the jobs are plain arrays."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        for job in jobs:
            network_figures(*job)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for future in [pool.submit(_draw, job) for job in jobs]:
            future.result()  # re-raises a worker's error here


def _draw(job: tuple) -> None:
    network_figures(*job)


def weight_matrices(net: StackedNetwork, k: int) -> list[np.ndarray]:
    """Network k's weight matrices, (in, out) each, as float64 arrays."""
    return [layer.weight[k].detach().double().numpy() for layer in net.linear_layers()]
