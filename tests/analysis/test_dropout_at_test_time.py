"""Dropout at test time: the scores against closed forms, Monte Carlo dropout
against weight scaling on networks where theory says where it converges,
and the engine's masks (fresh, each network's own, the same every call)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from pipeline.analysis.dropout_at_test_time import (bootstrap_intervals, compare, expected_calibration_error,
                                                    mean_probabilities, per_point, sample_counts, scores, summarize)
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import as_tensors
from pipeline.techniques import RecipeConfig

DROPOUT = RecipeConfig.model_validate({"dropout": {"keep_prob": [0.5, 0.5]}})
SEEDS = (0, 1, 2)


def logs(p) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log 0 = -inf: a class given no chance
        return np.log(np.asarray(p, dtype=np.float64))


# --- the scores --------------------------------------------------------------------------


def test_calibration_error_against_hand_computed_cases():
    y = np.array([0, 1, 0, 1])
    # always certain, half right: |0.5 - 1| over the one bin used
    certain = logs([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert scores(certain, y, 10)["ece"] == pytest.approx(0.5)
    # confidence 0.75 on every point, three of four right: calibrated
    calibrated = logs([[0.75, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.25]])
    assert scores(calibrated, y, 10)["ece"] == pytest.approx(0.0, abs=1e-15)
    # two bins: confidence 0.6 (right) and 0.9 (right, wrong): (1·|1 − 0.6| + 2·|0.5 − 0.9|) / 3
    confidence, correct = np.array([0.6, 0.9, 0.9]), np.array([True, True, False])
    assert expected_calibration_error(confidence, correct, 10) == pytest.approx((0.4 + 2 * 0.4) / 3)
    # with one bin the two errors cancel: |2/3 − 0.8|
    assert expected_calibration_error(confidence, correct, 1) == pytest.approx(abs(2 / 3 - 0.8))


def test_scores_keep_every_leading_axis_and_match_one_row_at_a_time():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=(4, 3, 200))
    y = rng.integers(0, 3, 200)
    together = scores(logs(p), y, 15)
    for i in range(4):
        for j in range(3):
            alone = scores(logs(p[i, j]), y, 15)
            for metric in together:
                assert together[metric][i, j] == pytest.approx(alone[metric], abs=1e-14)
    assert together["accuracy"][0, 0] == np.mean(p[0, 0].argmax(-1) == y)
    assert together["nll"][0, 0] == pytest.approx(-np.mean(np.log(p[0, 0, np.arange(200), y])))


def test_sample_counts_run_one_two_five_up_to_the_samples():
    assert sample_counts(50) == [1, 2, 5, 10, 20, 50]
    assert sample_counts(2) == [1, 2]
    assert sample_counts(100) == [1, 2, 5, 10, 20, 50, 100]
    assert sample_counts(7) == [1, 2, 5, 7]


def test_monte_carlo_scores_are_those_of_the_mean_of_the_first_t_samples():
    rng = np.random.default_rng(1)
    sampled = rng.dirichlet([2, 2], size=(10, 3, 300))  # T, K, m, classes
    weight_scaled = rng.dirichlet([2, 2], size=(3, 300))
    y = rng.integers(0, 2, 300)
    document = compare(logs(weight_scaled), logs(sampled), y, 15)
    assert document["monte_carlo"]["samples"] == [1, 2, 5, 10]
    for index, t in enumerate(document["monte_carlo"]["samples"]):
        direct = scores(logs(sampled[:t].mean(0)), y, 15)
        for metric in ("accuracy", "nll", "ece"):
            assert document["monte_carlo"][metric][index] == pytest.approx(direct[metric].tolist(), abs=1e-12)
    ensemble = scores(logs(weight_scaled.mean(0)), y, 15)
    assert document["seed_ensemble"]["nll"]["value"] == pytest.approx(float(ensemble["nll"]), abs=1e-12)
    assert np.allclose(mean_probabilities(logs(sampled)), logs(sampled.mean(0)))


def test_the_bootstrap_interval_is_about_the_binomial_one():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 4000)
    right = rng.random(4000) < 0.8  # 0.8 on the true class where right, on the other where wrong
    true = np.where(right, 0.8, 0.2)
    probabilities = np.stack([np.where(y == 0, true, 1 - true), np.where(y == 1, true, 1 - true)], -1)
    estimate = bootstrap_intervals(logs(probabilities), y, 15)["accuracy"]
    accuracy = right.mean()
    half_width = 1.96 * math.sqrt(accuracy * (1 - accuracy) / 4000)
    assert estimate["value"] == accuracy
    assert estimate["ci95_low"] < accuracy < estimate["ci95_high"]
    assert (estimate["ci95_high"] - estimate["ci95_low"]) / 2 == pytest.approx(half_width, rel=0.15)


def test_summary_pairs_seeds_and_adjusts_over_every_comparison():
    document = {"samples": 2, "test_points": 10, "seeds": [0, 1, 2],
                "weight_scaling": {"accuracy": [0.8, 0.81, 0.82], "nll": [0.5, 0.6, 0.7], "ece": [0.1, 0.1, 0.1]},
                "monte_carlo": {"samples": [1, 2], "accuracy": [[0.7, 0.7, 0.7], [0.9, 0.92, 0.91]],
                                "nll": [[0.9, 0.9, 0.9], [0.4, 0.5, 0.6]], "ece": [[0.2, 0.2, 0.2], [0.1, 0.1, 0.1]]},
                "seed_ensemble": {m: {"value": 0.5, "ci95_low": 0.4, "ci95_high": 0.6} for m in ("accuracy", "nll",
                                                                                                  "ece")}}
    summary = summarize({"dropout": document, "other": document})["dropout"]
    difference = summary["monte_carlo_minus_weight_scaling"]
    assert difference["nll"]["mean"] == pytest.approx(-0.1) and difference["nll"]["verdict"] == "lower"
    assert difference["ece"]["verdict"] == "not separated" and difference["ece"]["mean"] == pytest.approx(0)
    # six comparisons: Holm multiplies the smallest p-value by six
    smallest = min(d["p_value"] for d in difference.values())
    assert min(d["p_value_holm"] for d in difference.values()) == pytest.approx(min(1.0, 6 * smallest))
    assert summary["monte_carlo"]["accuracy"]["mean"] == pytest.approx(0.91)


# --- Monte Carlo dropout in the engine ------------------------------------------------------


def moons(n_train: int, n_test: int, seed: int = 0) -> Splits:
    X, y = make_moons(n_train + n_test, noise=0.3, random_state=seed)
    return Splits(X={"train": X[:n_train], "dev": X[:0], "test": X[n_train:]},
                  y={"train": y[:n_train], "dev": y[:0], "test": y[n_train:]}, classes=np.array([0, 1]))


def trained(activation: str, seeds=SEEDS, steps: int = 300) -> tuple[Trained, Splits]:
    """Networks of the default shape ([32, 32], Adam 0.02, moons with 200 training points)."""
    model = ModelConfig(hidden=[32, 32], activation=activation, init="he")
    trainer = TrainerConfig(optimizer="adam", lr=0.02, max_steps=steps, eval_every=steps)
    splits = moons(200, 500)
    result = fit([Member(seed, DROPOUT) for seed in seeds], model, trainer, splits)
    return Trained(result.net, result.batch, model, [DROPOUT] * len(seeds)), splits


@pytest.fixture(scope="module")
def relu():
    return trained("relu", steps=1000)


def test_on_a_linear_network_monte_carlo_converges_to_weight_scaling():
    """Without nonlinearities a logit is linear in each layer's mask, the masks
    are independent with mean 1 (inverted dropout), so the mean over masks is
    the weight-scaled logit exactly: the Monte Carlo mean lies within its
    standard error of it, and closes in as 1/sqrt(T)."""
    trained_, splits = trained("linear")
    x = as_tensors(splits.X["test"], splits.y["test"])[0]
    exact = trained_.net.evaluated(x).double()[..., 0]
    sampled = trained_.net.sampled_logits(x, 4000).double()[..., 0]
    errors = {}
    for t in (40, 4000):
        mean, spread = sampled[:t].mean(0), sampled[:t].std(0)
        errors[t] = (mean - exact).abs() / (spread / math.sqrt(t))  # in standard errors
        assert errors[t].max() < 5.5, t
        assert (mean - exact).abs().mean() > 0  # the masks did something
    first, last = ((sampled[:t].mean(0) - exact).abs().mean().item() for t in (40, 4000))
    assert last < first / 5  # ~ sqrt(100) = 10 times closer


def test_with_relu_monte_carlo_converges_elsewhere(relu):
    """The mean of a nonlinear function of the masks is not the function at the
    mean mask: with ReLU, Monte Carlo and weight scaling disagree by many
    standard errors on some points."""
    net, splits = relu[0].net, relu[1]
    x = as_tensors(splits.X["test"], splits.y["test"])[0]
    exact = net.evaluated(x).double()[..., 0]
    sampled = net.sampled_logits(x, 1000).double()[..., 0]
    standard_errors = (sampled.mean(0) - exact).abs() / (sampled.std(0) / math.sqrt(1000))
    assert standard_errors.max() > 10


def test_a_confident_mistake_costs_its_logit_not_infinity(relu):
    """In float32, 1 - sigmoid(40) is exactly 0: a log-likelihood taken from
    probabilities would be infinite (or the log of a clip)."""
    logit = torch.tensor([[[40.0]]])
    assert (1 - torch.sigmoid(logit)).item() == 0.0
    _, correct, true = per_point(relu[0].net.log_probabilities(logit).numpy(), np.array([0]))
    assert not correct[0, 0] and -true[0, 0] == pytest.approx(40.0, rel=1e-12)


def test_masks_are_each_networks_own_fresh_and_the_same_every_call(relu):
    """At the default scale (1 000 steps): a network's samples are those it
    draws alone, bit for bit; two calls draw the same; masks differ sample to
    sample; evaluation without sampling is weight scaling, untouched."""
    trained_, splits = relu
    x = as_tensors(splits.X["test"], splits.y["test"])[0]
    together = trained_.net.sampled_logits(x, 20)
    for k in range(len(SEEDS)):
        alone = trained_.subset([k]).sampled_logits(x, 20)
        assert torch.equal(alone[:, 0], together[:, k]), k
    assert torch.equal(together, trained_.net.sampled_logits(x, 20))
    assert not torch.equal(together[0], together[1])
    assert not torch.equal(together[:, 0], together[:, 1])  # each seed its own masks
    before = trained_.net.evaluated(x)
    assert torch.equal(before, trained_.net.evaluated(x)) and not trained_.net.training
