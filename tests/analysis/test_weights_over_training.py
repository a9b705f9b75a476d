"""Weights over training: the engine records every network's weights at the
steps asked for, and what it recorded is the network a shorter training
ends with, bit for bit, at the default scale; the statistics against their
definitions; the figures and intervals the report draws from them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from pipeline.analysis.weights import STATISTICS, statistics_during_training, weight_statistics
from pipeline.analysis.weights_over_training import histograms, statistic_curves, statistic_intervals
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import make_network
from pipeline.techniques import Batch, RecipeConfig
from pipeline.usecases.training import load_weights, save_weights, train, weight_steps

DEFAULT = ModelConfig(hidden=[32, 32], activation="relu", init="he")  # conf/model/mlp.yaml
TRAINER = TrainerConfig(optimizer="adam", lr=0.02, max_steps=1000, eval_every=50)  # conf/trainer/default.yaml


def moons() -> Splits:  # the default moons' sizes: 200 training points, 500 dev
    X, y = make_moons(700, noise=0.3, random_state=0)
    return Splits(X={"train": X[:200], "dev": X[200:], "test": X[200:]},
                  y={"train": y[:200], "dev": y[200:], "test": y[200:]}, classes=np.array([0, 1]))


def test_weights_are_recorded_at_log_spaced_steps():
    assert weight_steps(1000) == [0, 1, 3, 10, 30, 100, 300, 1000]
    assert weight_steps(30000) == [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000]
    assert weight_steps(60) == [0, 1, 3, 10, 30, 60] and weight_steps(1) == [0, 1]


@pytest.mark.parametrize("recipe", [{"dropout": {"keep_prob": [0.5, 0.5]}}, {"l1": {"strength": 1.0}}])
def test_a_record_is_the_network_a_shorter_training_ends_with(recipe):
    members = [Member(seed, RecipeConfig.model_validate(recipe)) for seed in (0, 1, 2)]
    splits = moons()
    recorded = train(members, DEFAULT, TRAINER, splits, boundaries=False).weights
    assert sorted(recorded) == weight_steps(1000)
    batch = Batch(seeds=(0, 1, 2), n_features=2, hidden=(32, 32), n_train=200, dtype=torch.float32)
    initial, _ = make_network(batch, 2, DEFAULT, [m.recipe for m in members])
    final = fit(members, DEFAULT, TRAINER, splits).net
    for step in (0, 3, 100, 1000):
        ended = {0: initial, 1000: final}.get(step) or fit(
            members, DEFAULT, TRAINER.model_copy(update={"max_steps": step}), splits).net
        for layer, matrix in zip(ended.linear_layers(), recorded[step]):
            assert np.array_equal(matrix, layer.weight.detach().numpy()), step  # bit for bit, every seed
    # weights moved between records, so the comparisons could fail
    assert not np.array_equal(recorded[100][0], recorded[1000][0])


def test_a_stopped_network_is_recorded_as_it_stopped():
    early = Member(0, RecipeConfig.model_validate({"early_stopping": {"patience": 1}}))
    result = fit([early], DEFAULT, TRAINER, moons(), weight_steps=weight_steps(1000))
    stopped = result.steps[0]
    assert stopped < 1000
    after = [step for step in result.weights if step >= stopped]
    assert all(torch.equal(result.weights[step][0], result.weights[after[-1]][0]) for step in after)


def test_the_record_file_round_trips_and_is_the_same_bytes_each_time(tmp_path):
    weights = {step: [np.random.default_rng(step).normal(size=(3, 2, 4)).astype(np.float32),
                      np.random.default_rng(step + 9).normal(size=(3, 4, 1)).astype(np.float32)]
               for step in (0, 1, 3)}
    digests = []
    for name in ("a.npz", "b.npz"):
        save_weights(tmp_path / name, weights)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    loaded = load_weights(tmp_path / "a.npz")
    assert sorted(loaded) == [0, 1, 3]
    assert all(np.array_equal(a, b) for step in weights for a, b in zip(weights[step], loaded[step]))
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="c.npz is missing or corrupt: run the train stage"):
        load_weights(tmp_path / "c.npz")


def test_statistics_against_their_definitions():
    first = torch.tensor([[[0.0, 3.0], [0.005, -4.0]], [[1.0, 1.0], [1.0, 1.0]]])  # (K=2, in 2, out 2)
    second = torch.tensor([[[0.0], [0.0]], [[2.0], [0.0]]])  # (2, 2, 1)
    a, b = weight_statistics([first, second], sparsity_threshold=0.01)
    assert a["squared_weight_sum"] == pytest.approx(0.005 ** 2 + 9 + 16)
    assert a["sparsity"] == 4 / 6 and a["zero_fraction"] == 3 / 6  # 0.005 is below the threshold, not zero
    assert a["max_column_norm"] == pytest.approx(5.0)  # the incoming weights (3, -4) of unit 2
    assert a["sparsity_layer_1"] == 2 / 4 and a["sparsity_layer_2"] == 1.0
    assert b["zero_fraction"] == 1 / 6 and b["max_column_norm"] == pytest.approx(2.0)
    assert b["squared_weight_sum"] == pytest.approx(8.0)


def test_intervals_over_seeds_and_the_figures(tmp_path):
    rng = np.random.default_rng(0)
    weights = {step: [rng.normal(scale=1 / (1 + step), size=(4, 2, 8)), rng.normal(size=(4, 8, 1))]
               for step in (0, 1, 3)}
    intervals = statistic_intervals(weights, 0.01)
    assert set(intervals) == set(STATISTICS)
    per_network = statistics_during_training(weights, 0.01)
    for point in intervals["squared_weight_sum"]:
        values = [network["squared_weight_sum"] for network in per_network[point["step"]]]
        assert point["mean"] == pytest.approx(np.mean(values)) and point["n"] == 4
        assert point["ci95_low"] < point["mean"] < point["ci95_high"]
    figure = histograms(tmp_path / "h.png", {"a": weights, "b": weights}, "weights")
    assert len(figure.axes) == 2 and all(len(ax.patches) == 3 for ax in figure.axes)  # a line per step
    assert figure.axes[0].get_xlim() == figure.axes[1].get_xlim()  # shared axes
    curves = statistic_curves(tmp_path / "c.png", {"a": intervals}, 0.01, "statistics")
    assert [ax.get_title() for ax in curves.axes] == [
        "sum W² (L2's)", "share |w| < 0.01 (L1's)", "share exactly 0 (proximal L1's)", "max column norm (max-norm's)"]
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
