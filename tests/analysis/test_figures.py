"""The figures as a teacher reads them, checked on the real matplotlib
objects (drawn into tmp_path, never compared to golden images): planes zoomed
to the data with equal axes and ticks, neutral split markers, rings exactly on
the misclassified test points, comparison grids of at most four columns on
shared scales, the early-stopping step marked, layers in order."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from pipeline.analysis import figures
from pipeline.data.splits import Splits

RNG = np.random.default_rng(0)


def football_like(n_train: int = 60, n_test: int = 40, classes=(0, 1)) -> Splits:
    """Points within about ±0.8 (the football data's scale), class by the sign of x1 (by its tercile for three)."""
    def part(n):
        X = RNG.uniform([-0.8, -0.6], [0.8, 0.7], size=(n, 2))
        y = np.digitize(X[:, 0], np.linspace(-0.8, 0.8, len(classes) + 1)[1:-1])
        return X, y

    parts = {name: part(n) for name, n in (("train", n_train), ("dev", 20), ("test", n_test))}
    return Splits(X={name: X for name, (X, _) in parts.items()}, y={name: y for name, (_, y) in parts.items()},
                  classes=np.array(classes))


def smooth_proba(grid, k: int = 2) -> np.ndarray:
    """Class probabilities over the grid that change with x1, (rows, columns, classes)."""
    xx, _ = grid
    if k == 2:
        p = 1 / (1 + np.exp(-8 * xx))
        return np.stack([1 - p, p], axis=-1)
    logits = np.stack([-8 * (xx - centre) ** 2 for centre in np.linspace(-0.8, 0.8, k)], axis=-1)
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def with_errors(y: np.ndarray, wrong: list[int], k: int = 2) -> np.ndarray:
    y_pred = y.copy()
    y_pred[wrong] = (y[wrong] + 1) % k
    return y_pred


def accuracy(train: float, test: float) -> dict:
    return {"train": {"accuracy": train}, "test": {"accuracy": test}}


def legend_entries(legend) -> dict:
    return {text.get_text(): handle for text, handle in zip(legend.get_texts(), legend.legend_handles)}


def is_grey(color) -> bool:
    r, g, b, _ = to_rgba(color)
    return r == g == b


def collection(ax, label: str):
    (found,) = [c for c in ax.collections if c.get_label() == label]
    return found


# --- decision boundaries -----------------------------------------------------------


def test_plane_zooms_to_the_data_with_a_margin_relative_to_its_range():
    splits = football_like()
    xx, yy = figures.plane(splits)
    X = np.concatenate(list(splits.X.values()))
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = hi - lo
    for axis, values in ((0, xx), (1, yy)):
        assert lo[axis] - 0.1 * span[axis] <= values.min() < lo[axis]  # every point inside, little beyond
        assert hi[axis] < values.max() <= hi[axis] + 0.1 * span[axis]


def test_decision_boundary_has_equal_axes_ticks_and_the_plane_as_limits(tmp_path):
    splits = football_like()
    grid = figures.plane(splits)
    fig = figures.decision_boundary(tmp_path / "boundary.png", smooth_proba(grid), grid, splits, "l2",
                                    accuracy(0.9, 0.8), splits.y["test"])
    assert (tmp_path / "boundary.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    assert ax.get_aspect() == 1.0
    assert ax.get_xlim() == pytest.approx((grid[0].min(), grid[0].max()))
    assert ax.get_ylim() == pytest.approx((grid[1].min(), grid[1].max()))
    for axis in (ax.xaxis, ax.yaxis):
        labels = [label.get_text() for label in axis.get_ticklabels()]
        assert len(labels) >= 3 and all(labels)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    assert "train 90.0% / test 80.0%" in ax.get_title()


def test_legend_shows_the_splits_in_neutral_grey_and_each_class_in_its_colour(tmp_path):
    splits = football_like()
    grid = figures.plane(splits)
    fig = figures.decision_boundary(tmp_path / "boundary.png", smooth_proba(grid), grid, splits, "l2",
                                    accuracy(0.9, 0.8), splits.y["test"])
    (legend,) = fig.legends
    entries = legend_entries(legend)
    assert list(entries) == ["train", "test", "misclassified (test)", "class 0", "class 1"]
    train, test = entries["train"], entries["test"]
    assert (train.get_marker(), test.get_marker()) == ("o", "X")
    for handle in (train, test):
        assert is_grey(handle.get_markerfacecolor()) and to_rgba(handle.get_markeredgecolor()) == to_rgba("k")
    class_colors = [to_rgba(entries[f"class {c}"].get_facecolor()) for c in (0, 1)]
    assert class_colors[0] != class_colors[1] and not any(is_grey(c) for c in class_colors)
    # the points wear their class's colour with a dark edge, visible on their own class's side
    ax = fig.axes[0]
    for part in ("train", "test"):
        points = collection(ax, part)
        expected = np.array(class_colors)[splits.y[part]]
        assert np.allclose(points.get_facecolors(), expected)
        assert np.allclose(points.get_edgecolors(), to_rgba("k"))


def test_rings_mark_exactly_the_misclassified_test_points(tmp_path):
    splits = football_like()
    grid = figures.plane(splits)
    wrong = [0, 3, 17, 39]
    y_pred = with_errors(splits.y["test"], wrong)
    fig = figures.decision_boundary(tmp_path / "boundary.png", smooth_proba(grid), grid, splits, "l2",
                                    accuracy(0.9, 0.9), y_pred)
    rings = collection(fig.axes[0], "misclassified (test)")
    assert np.allclose(rings.get_offsets(), splits.X["test"][wrong])
    assert len(rings.get_facecolors()) == 0  # rings, not discs hiding the point


def test_rings_only_for_the_test_points_shown(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "TEST_POINTS_SHOWN", 10)
    splits = football_like()
    grid = figures.plane(splits)
    y_pred = with_errors(splits.y["test"], [2, 9, 10, 30])
    fig = figures.decision_boundary(tmp_path / "boundary.png", smooth_proba(grid), grid, splits, "l2",
                                    accuracy(0.9, 0.9), y_pred)
    assert np.allclose(collection(fig.axes[0], "misclassified (test)").get_offsets(), splits.X["test"][[2, 9]])
    assert "test (first 10 of 40)" in legend_entries(fig.legends[0])


def test_three_classes_get_a_legend_entry_each_and_no_colour_bar(tmp_path):
    splits = football_like(classes=(0, 1, 2))
    grid = figures.plane(splits)
    y_pred = with_errors(splits.y["test"], [1, 5], k=3)
    fig = figures.decision_boundary(tmp_path / "boundary.png", smooth_proba(grid, 3), grid, splits, "spiral",
                                    accuracy(0.9, 0.9), y_pred)
    assert len(fig.axes) == 1
    entries = legend_entries(fig.legends[0])
    assert [label for label in entries if label.startswith("class")] == ["class 0", "class 1", "class 2"]
    assert len(collection(fig.axes[0], "misclassified (test)").get_offsets()) == 2


def test_eleven_recipes_compare_in_a_grid_of_four_columns_with_one_colour_bar_and_legend(tmp_path):
    splits = football_like()
    grid = figures.plane(splits)
    recipes = [f"recipe_{i}" for i in range(11)]
    probas = {name: smooth_proba(grid) for name in recipes}
    y_preds = {name: with_errors(splits.y["test"], [i]) for i, name in enumerate(recipes)}
    metrics = {name: accuracy(0.95, 0.9) for name in recipes}
    fig = figures.decision_boundaries(tmp_path / "boundaries.png", probas, grid, splits, metrics, y_preds)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split("\n")[0] for ax in panels] == recipes
    columns = {round(ax.get_position().x0, 3) for ax in panels}
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert (len(columns), len(rows)) == (4, 3)
    assert len(fig.axes) == len(panels) + 1  # one shared colour bar
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in panels)
    for i, ax in enumerate(panels):
        assert ax.get_aspect() == 1.0 and ax.title.get_fontsize() >= 10
        assert "train 95.0% / test 90.0%" in ax.get_title()
        assert np.allclose(collection(ax, "misclassified (test)").get_offsets(), splits.X["test"][[i]])
    # the panel above the last row's empty slot keeps its x tick labels
    above_empty = panels[7]
    assert any(label.get_visible() and label.get_text() for label in above_empty.get_xticklabels())
    width, _ = fig.get_size_inches() * fig.dpi
    assert width < 1600  # readable at MLflow's width, unlike the 2986-pixel strip of eleven


# --- weights ---------------------------------------------------------------------


def layered_weights(scale: float) -> list[np.ndarray]:
    return [RNG.normal(0, scale, size) for size in ((2, 8), (8, 8), (8, 1))]


def test_weight_histogram_lists_the_layers_in_order(tmp_path):
    fig = figures.weight_histogram(tmp_path / "weights.png", layered_weights(1.0), "baseline")
    assert [text.get_text() for text in fig.axes[0].get_legend().get_texts()] == ["W1", "W2", "W3"]


def test_weight_histograms_compare_recipes_on_shared_bins_and_range(tmp_path):
    recipes = {f"recipe_{i}": layered_weights(scale) for i, scale in enumerate(np.linspace(0.1, 2.0, 11))}
    metrics = {name: {"weights": {"squared_weight_sum": 12.34, "sparsity": 0.5}} for name in recipes}
    fig = figures.weight_histograms(tmp_path / "weight_histograms.png", recipes, metrics)
    assert (tmp_path / "weight_histograms.png").read_bytes()[:4] == b"\x89PNG"
    panels = fig.axes
    assert [ax.get_title().split("\n")[0] for ax in panels] == list(recipes)
    assert "sum W² 12.3, sparsity 50%" in panels[0].get_title()
    assert len({round(ax.get_position().x0, 3) for ax in panels}) == 4
    edges = [step.get_data().edges for ax in panels for step in ax.patches]
    assert len(edges) == 3 * len(recipes)
    assert all(np.array_equal(e, edges[0]) for e in edges)
    reach = max(np.abs(w).max() for matrices in recipes.values() for w in matrices)
    assert edges[0][[0, -1]] == pytest.approx([-reach, reach])
    assert len(edges[0]) % 2 == 0  # an odd number of bins: one centred on zero
    assert len({ax.get_xlim() for ax in panels}) == 1 and len({ax.get_ylim() for ax in panels}) == 1
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["W1", "W2", "W3"]


# --- learning curves ------------------------------------------------------------------

CURVE = [{"step": step, "train_loss": 1 / (1 + step), "dev_loss": 0.5 + abs(step - 100) / 400,
          "train_accuracy": 0.9, "dev_accuracy": 0.8} for step in range(0, 301, 50)]


def test_learning_curves_mark_the_step_early_stopping_kept(tmp_path):
    fig = figures.learning_curves(tmp_path / "curves.png", CURVE, "early_stopping", best_step=100)
    for ax in fig.axes:
        (marks,) = [line for line in ax.get_lines() if line.get_label().startswith("best step")]
        assert marks.get_label() == "best step 100 (kept)"
        assert list(marks.get_xdata()) == [100, 100]
        assert "best step 100 (kept)" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_learning_curves_without_early_stopping_mark_nothing(tmp_path):
    fig = figures.learning_curves(tmp_path / "curves.png", CURVE, "l2")
    assert all(line.get_label() in ("train", "dev") for ax in fig.axes for line in ax.get_lines())


def test_network_figures_pass_the_best_step_and_the_test_predictions_on(tmp_path, monkeypatch):
    splits = football_like()
    grid = figures.plane(splits)
    y_pred = with_errors(splits.y["test"], [4])
    drawn = {}
    monkeypatch.setattr(figures, "learning_curves", lambda path, curve, name, best_step: drawn.update(best=best_step))
    monkeypatch.setattr(figures, "decision_boundary", lambda *args: drawn.update(y_pred=args[-1]))
    figures.network_figures(tmp_path, "early_stopping", splits, accuracy(0.9, 0.9), CURVE, layered_weights(1.0),
                            y_pred, smooth_proba(grid), grid, best_step=150)
    assert drawn["best"] == 150 and drawn["y_pred"] is y_pred
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "weight_histogram.png"]
