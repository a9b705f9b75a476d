"""The course article's protocol (conf/experiment/football.yaml) against a
numpy transcription of the course notebook, on synthetic data of the
football file's shape (the real file cannot be downloaded here)."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch
from conftest import ROOT, run, serve_directory
from scipy.io import savemat

from pipeline.config import PipelineConfig
from pipeline.data.raw import Raw
from pipeline.data.splits import split
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import make_network
from pipeline.techniques import Batch

STEPS = 300


def synthetic_football(seed: int = 0) -> dict[str, np.ndarray]:
    """211 train / 200 test points in the football file's layout: X (n, 2),
    y (n, 1), labels from a wavy boundary with 10% of them flipped."""
    rng = np.random.default_rng(seed)

    def points(n):
        X = rng.uniform([-0.75, -0.8], [0.6, 0.7], size=(n, 2))
        y = (X[:, 1] > 0.25 * np.sin(5 * X[:, 0])).astype(np.uint8)
        flip = rng.random(n) < 0.1
        return X, np.where(flip, 1 - y, y)[:, None]

    (X, y), (Xval, yval) = points(211), points(200)
    return {"X": X, "y": y, "Xval": Xval, "yval": yval}


@pytest.fixture(scope="module")
def preset() -> PipelineConfig:
    import os

    from pipeline.params import compose

    cwd = os.getcwd()
    os.chdir(ROOT)  # compose reads conf/ relative to the working directory
    try:
        return PipelineConfig.model_validate(compose("config", ["experiment=football"]))
    finally:
        os.chdir(cwd)


def notebook(X: np.ndarray, Y: np.ndarray, steps: int, lambd: float = 0.0, keep_prob: float = 1.0):
    """The course notebook's model(): X (2, m), Y (1, m); returns the
    initial weights, the cost of every iteration and the final weights."""
    m = X.shape[1]
    np.random.seed(3)
    dims = [2, 20, 3, 1]
    W = [np.random.randn(dims[i], dims[i - 1]) / np.sqrt(dims[i - 1]) for i in range(1, 4)]
    b = [np.zeros((dims[i], 1)) for i in range(1, 4)]
    initial = [w.copy() for w in W]
    costs = []
    for _ in range(steps):
        if keep_prob < 1:
            np.random.seed(1)
        A, masks = [X], [None]
        for layer in range(2):
            a = np.maximum(0, W[layer] @ A[-1] + b[layer])
            if keep_prob < 1:
                D = np.random.rand(a.shape[0], a.shape[1]) < keep_prob
                a = a * D / keep_prob
                masks.append(D)
            A.append(a)
        A3 = 1 / (1 + np.exp(-(W[2] @ A[2] + b[2])))
        cross_entropy = 1 / m * np.nansum(np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y))
        costs.append(cross_entropy + lambd / (2 * m) * sum(np.sum(w ** 2) for w in W))
        dZ = A3 - Y
        for layer in (2, 1, 0):
            dW = 1 / m * dZ @ A[layer].T + lambd / m * W[layer]
            db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
            if layer:
                dA = W[layer].T @ dZ
                if keep_prob < 1:
                    dA = dA * masks[layer] / keep_prob
                dZ = dA * (A[layer] > 0)
            W[layer] = W[layer] - 0.3 * dW
            b[layer] = b[layer] - 0.3 * db
    return initial, costs, W


def test_the_preset_is_the_course_protocol(preset):
    assert list(preset.datasets) == ["football"] and preset.datasets["football"].split.dev == 0
    assert preset.model.hidden == [20, 3] and preset.model.activation == "relu"
    assert preset.model.init == "randn_sqrt_fan_in" and preset.model.numpy_init_seed == 3
    trainer = preset.trainer
    assert (trainer.optimizer, trainer.lr, trainer.max_steps, trainer.batch_size, trainer.precision) == (
        "sgd", 0.3, 30_000, None, "64-true")
    assert sorted(preset.suite) == ["baseline", "dropout", "dropout_fresh", "l2"]
    assert preset.suite["baseline"].techniques() == []
    assert preset.suite["l2"].l2.strength == 0.7 and preset.suite["l2"].techniques() == ["l2"]
    assert preset.suite["dropout"].dropout.keep_prob == [0.86, 0.86]
    assert preset.suite["dropout"].dropout.mask == "fixed" and preset.suite["dropout_fresh"].dropout.mask == "fresh"


def football_splits(preset):
    data = synthetic_football()
    return data, split(Raw(data["X"], data["y"].ravel(), data["Xval"], data["yval"].ravel()),
                       preset.datasets["football"].split)


@pytest.mark.parametrize("recipe, lambd, keep_prob", [("baseline", 0.0, 1.0), ("l2", 0.7, 1.0), ("dropout", 0.0, 0.86)])
def test_training_follows_the_notebook(preset, recipe, lambd, keep_prob):
    data, splits = football_splits(preset)
    trainer = preset.trainer.model_copy(update={"max_steps": STEPS, "eval_every": 100})
    assert np.array_equal(splits.X["train"], data["X"])  # every point trains, in the file's order
    initial, costs, final = notebook(data["X"].T, data["y"].T, STEPS, lambd, keep_prob)

    batch = Batch(seeds=(0,), n_features=2, hidden=tuple(preset.model.hidden), n_train=211, dtype=torch.float64)
    net, _ = make_network(batch, 2, preset.model, [preset.recipe(recipe)])
    for layer, w in zip(net.linear_layers(), initial):  # the notebook's initialization, bit for bit
        assert torch.equal(layer.weight[0].T, torch.from_numpy(w))
        assert not layer.bias.any()

    result = fit([Member(0, preset.recipe(recipe))], preset.model, trainer, splits)
    assert result.figures[0]["initial_cost"] == pytest.approx(costs[0], rel=1e-13)
    assert costs[-1] < costs[0] - 0.01  # the comparison below is about a model that learned
    for layer, w in zip(result.net.linear_layers(), final):
        assert layer.weight.dtype == torch.float64
        np.testing.assert_allclose(layer.weight[0].T.detach().numpy(), w, rtol=1e-9, atol=1e-12)


def test_seeds_do_not_change_the_notebooks_networks(preset):
    """The preset draws its weights with numpy and, with the notebook's fixed
    mask, no random number depends on the seed: every seed trains the same
    network (to rounding: the three sit at different places in the batch)."""
    _, splits = football_splits(preset)
    trainer = preset.trainer.model_copy(update={"max_steps": 50, "eval_every": 50})
    result = fit([Member(seed, preset.recipe("dropout")) for seed in (0, 1, 2)], preset.model, trainer, splits)
    weights = result.net.linear_layers()[0].weight
    torch.testing.assert_close(weights[1], weights[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(weights[2], weights[0], rtol=0, atol=1e-12)


def test_fresh_masks_differ_from_the_notebooks_fixed_mask(preset):
    _, splits = football_splits(preset)
    trainer = preset.trainer.model_copy(update={"max_steps": 50, "eval_every": 50})
    weights = {recipe: fit([Member(0, preset.recipe(recipe))], preset.model, trainer, splits).net[-1].weight
               for recipe in ("dropout", "dropout_fresh")}
    assert not torch.equal(weights["dropout"], weights["dropout_fresh"])


@pytest.mark.slow
def test_the_preset_runs_with_one_command(project, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    savemat(served / "data.mat", synthetic_football())
    sha256 = hashlib.sha256((served / "data.mat").read_bytes()).hexdigest()
    with serve_directory(served) as base:
        result = run(["dvc", "exp", "run", "-S", "experiment=football",
                      "-S", f"datasets.football.source.urls=['{base}/data.mat']",
                      "-S", f"datasets.football.source.sha256={sha256}",
                      "-S", "trainer.max_steps=200", "-S", "trainer.eval_every=100"],
                     project, env={"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"})
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    recipes = ["baseline", "l2", "dropout", "dropout_fresh"]
    assert ran == {"validate", "landscapes", "fetch@football", "split@football", "path@football", "report@football",
                   "track@football",
                   *(f"{stage}@football-{r}" for stage in ("train", "evaluate") for r in recipes)}
    for recipe in recipes:
        metrics = json.loads((project / f"metrics/football/{recipe}/seed_0.json").read_text())
        assert metrics["training"]["steps"] == 200 and set(metrics) >= {"train", "test"} and "dev" not in metrics
        assert sum(c["support"] for c in metrics["per_class"].values()) == 200  # the shipped test set
    summary = (project / "reports/football/summary.md").read_text()
    main_table = re.search(r"^\|---\|.*\n(.*)$", summary, re.M)  # the first table's first row
    assert main_table.group(1).startswith("| baseline |"), summary
    assert re.search(r"^\| dropout \|.*keep 0.86/0.86, fixed masks \|$", summary, re.M), summary
    assert re.search(r"^\| dropout_fresh \|.*keep 0.86/0.86, fresh masks \|$", summary, re.M), summary
