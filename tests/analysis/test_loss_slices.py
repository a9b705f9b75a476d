"""Loss slices (Li et al., 2018) of really trained networks: the directions
are filter-normalized and reproducible, every grid point of the batched
slice is the loss that network has alone (the centre, the trained network
itself, bit for bit), a logistic regression's slice is convex as
cross-entropy is in its weights, and the figure is drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.contour import ContourSet
from sklearn.datasets import make_moons

from pipeline.analysis.loss_slice_figures import loss_slice_figure
from pipeline.analysis.loss_slices import filter_normalized_directions, line_slice, loss_slice
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import as_tensors
from pipeline.techniques import RecipeConfig

DEFAULT = ModelConfig(hidden=[32, 32], activation="relu", init="he")  # conf/model/mlp.yaml
TRAINER = TrainerConfig(optimizer="adam", lr=0.02, max_steps=300, eval_every=100)
BASELINE = RecipeConfig()
SEEDS = (0, 1, 2)
POINTS = 41
CENTRE = POINTS // 2


def moons() -> Splits:  # the default moons' sizes: 200 training points, 500 dev
    X, y = make_moons(700, noise=0.3, random_state=0)
    return Splits(X={"train": X[:200], "dev": X[200:], "test": X[200:]},
                  y={"train": y[:200], "dev": y[200:], "test": y[200:]}, classes=np.array([0, 1]))


def train(model: ModelConfig, trainer: TrainerConfig = TRAINER) -> Trained:
    result = fit([Member(seed, BASELINE) for seed in SEEDS], model, trainer, moons())
    return Trained(result.net, result.batch, model, [BASELINE] * len(SEEDS))


@pytest.fixture(scope="module")
def trained() -> Trained:
    return train(DEFAULT)


@pytest.fixture(scope="module")
def sliced(trained) -> dict:
    return loss_slice(trained, moons(), k=1, points=POINTS, seed=5)


def test_directions_are_filter_normalized_and_reproducible(trained):
    weights = [layer.weight[1] for layer in trained.net.linear_layers()]
    first, second = filter_normalized_directions(trained.net, 1, 2, seed=5)
    for direction in (first, second):
        assert [d.shape for d in direction] == [w.shape for w in weights]
        for d, w in zip(direction, weights):
            assert torch.allclose(d.norm(dim=0), w.norm(dim=0), rtol=1e-5, atol=0)
    assert not any(torch.allclose(a, b) for a, b in zip(first, second))
    again = filter_normalized_directions(trained.net, 1, 2, seed=5)
    assert all(torch.equal(a, b) for direction, repeated in zip((first, second), again)
               for a, b in zip(direction, repeated))
    # network 1 alone, and network 1 at the back of another stack: the same directions, bit for bit
    for net, k in ((trained.single(1), 0), (trained.subset([2, 0, 1]), 2)):
        elsewhere = filter_normalized_directions(net, k, 2, seed=5)
        assert all(torch.equal(a, b) for direction, moved in zip((first, second), elsewhere)
                   for a, b in zip(direction, moved))
    other_seed = filter_normalized_directions(trained.net, 1, 1, seed=6)[0]
    assert not torch.allclose(other_seed[0], first[0])


def test_a_zero_column_gets_a_zero_direction(trained):
    net = trained.single(0)
    with torch.no_grad():
        net.linear_layers()[0].weight[0, :, 3] = 0
    direction = filter_normalized_directions(net, 0, 1, seed=0)[0][0]
    assert torch.equal(direction[:, 3], torch.zeros(2)) and direction[:, 4].norm() > 0


def test_the_grid_centre_is_the_trained_network_bit_for_bit(trained, sliced):
    splits = moons()
    assert sliced["alphas"][CENTRE] == 0.0 and len(sliced["alphas"]) == POINTS
    for part in ("train", "dev"):
        own = trained.net.measure(*as_tensors(splits.X[part], splits.y[part]))
        assert np.shape(sliced[part]["loss"]) == (POINTS, POINTS)
        assert sliced[part]["loss"][CENTRE][CENTRE] == own["loss"][1].item()
        assert sliced[part]["accuracy"][CENTRE][CENTRE] == own["accuracy"][1].item()
        assert np.array_equal(line_slice(sliced, part), sliced[part]["loss"][CENTRE])
    # the slice leaves the minimum: the comparisons above could fail
    train_loss = np.asarray(sliced["train"]["loss"])
    assert train_loss[CENTRE, CENTRE] < 0.2 * min(train_loss[0, 0], train_loss[-1, -1], train_loss[0, -1])


@pytest.mark.parametrize("row, column", [(0, 0), (40, 3), (7, 29), (CENTRE, 36)])
def test_a_grid_point_is_that_network_built_alone(trained, sliced, row, column):
    splits = moons()
    first, second = filter_normalized_directions(trained.net, 1, 2, seed=5)
    alpha, beta = (torch.tensor(sliced["alphas"][i], dtype=torch.float32) for i in (column, row))
    alone = trained.single(1)
    with torch.no_grad():
        for layer, d1, d2 in zip(alone.linear_layers(), first, second):
            layer.weight[0] += alpha * d1 + beta * d2
    for part in ("train", "dev"):
        own = alone.measure(*as_tensors(splits.X[part], splits.y[part]))
        assert sliced[part]["loss"][row][column] == own["loss"][0].item()
        assert sliced[part]["accuracy"][row][column] == own["accuracy"][0].item()


def test_a_logistic_regressions_slice_is_convex():
    """Cross-entropy is convex in a logistic regression's weights, so along
    any line through them (the bias fixed) too. In float64, so that rounding
    does not pass for curvature."""
    logistic = ModelConfig(hidden=[], activation="relu", init="he")
    trained = train(logistic, TRAINER.model_copy(update={"precision": "64-true"}))
    result = loss_slice(trained, moons(), k=0, points=POINTS, span=3.0)
    for part in ("train", "dev"):
        assert np.diff(line_slice(result, part), 2).min() >= -1e-6
        grid = np.asarray(result[part]["loss"])
        assert np.diff(grid, 2, axis=0).min() >= -1e-6 and np.diff(grid, 2, axis=1).min() >= -1e-6
    # trained to near the train loss's minimum, and curved: a flat or linear slice would pass trivially
    train_line = line_slice(result, "train")
    assert abs(int(train_line.argmin()) - CENTRE) <= 3 and train_line[0] > 2 * train_line[CENTRE]


def test_the_figure_is_drawn(trained, sliced, tmp_path):
    other = loss_slice(trained, moons(), k=2, points=POINTS)
    figure = loss_slice_figure(tmp_path / "slices.png", {"seed 1": sliced, "seed 2": other}, "moons: loss slices")
    png = (tmp_path / "slices.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(png) < 2_000_000
    contours = [c for ax in figure.axes for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 2 and np.array_equal(contours[0].levels, contours[1].levels)
    ratios = contours[0].levels[1:] / contours[0].levels[:-1]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1  # log-spaced
    assert "not the whole landscape" in " ".join(text.get_text() for text in figure.texts)
