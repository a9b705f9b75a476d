"""Each technique's own math against its closed form, on a batch of networks
with different strengths: penalty values, masks, normalization, augmentation,
constraints; and the values a regularization path sweeps.

(tests/engine/test_batched.py checks every technique's gradient and update
against plain torch, network by network.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn

from pipeline.analysis.weights import weight_figures
from pipeline.config import ModelConfig, PathConfig, TrainerConfig
from pipeline.core.errors import PipelineError
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import make_network
from pipeline.engine.strengths import check_strengths
from pipeline.techniques import TECHNIQUES, Batch, RecipeConfig
from pipeline.techniques.augmentation import Augmentation, AugmentationConfig
from pipeline.techniques.batch_norm import StackedBatchNorm
from pipeline.techniques.dropout import StackedDropout

SMALL = ModelConfig(hidden=[4, 3], activation="relu", init="he")


def batch_of(k: int = 3, n_features: int = 3, dtype=torch.float64, seeds=None, image_shape=None) -> Batch:
    return Batch(seeds=tuple(seeds or range(k)), n_features=n_features, hidden=tuple(SMALL.hidden), n_train=25,
                 dtype=dtype, image_shape=image_shape)


def networks(recipes: list[dict], **batch):
    """K networks (one per recipe) with non-zero biases, so 'biases untouched' can fail."""
    b = batch_of(k=len(recipes), **batch)
    net, techniques = make_network(b, 2, SMALL, [RecipeConfig.model_validate(r) for r in recipes])
    with torch.no_grad():
        for layer in net.linear_layers():
            layer.bias.uniform_(-1, 1)
    return net, techniques


def moons(n_train: int = 120, n_dev: int = 60) -> Splits:
    X, y = make_moons(n_train + n_dev, noise=0.3, random_state=0)
    return Splits(X={"train": X[:n_train], "dev": X[n_train:], "test": X[n_train:]},
                  y={"train": y[:n_train], "dev": y[n_train:], "test": y[n_train:]}, classes=np.array([0, 1]))


# --- penalties: values against closed forms ----------------------------------------------


@pytest.mark.parametrize("name, power, divisor", [("l1", 1, 1), ("l2", 2, 2)])
def test_penalty_is_strength_over_m_times_the_sum_per_network(name, power, divisor):
    strengths = [0.5, 1.0, 3.0]
    net, (technique,) = networks([{name: {"strength": s}} for s in strengths])
    penalty = technique.penalty(net)
    for k, s in enumerate(strengths):
        size = sum(layer.weight[k].abs().pow(power).sum() for layer in net.linear_layers())  # biases spared
        assert penalty[k].item() == pytest.approx(s / (divisor * 25) * size.item(), rel=1e-12)


def test_per_layer_strengths_and_biases_hit_the_right_matrices():
    net, (technique,) = networks([{"l2": {"strength": 9.0, "per_layer": [0.0, 2.0, 5.0], "regularize_bias": True}}])
    layers = net.linear_layers()
    expected = sum(s / 50 * (layer.weight[0].pow(2).sum() + layer.bias[0].pow(2).sum())
                   for s, layer in zip([0.0, 2.0, 5.0], layers))
    assert technique.penalty(net)[0].item() == pytest.approx(expected.item(), rel=1e-12)


def test_elastic_net_is_the_sum_of_both():
    net, (technique,) = networks([{"elastic_net": {"l1_strength": 0.3, "l2_strength": 1.5}}])
    weights = [layer.weight[0] for layer in net.linear_layers()]
    expected = 0.3 / 25 * sum(w.abs().sum() for w in weights) + 1.5 / 50 * sum(w.pow(2).sum() for w in weights)
    assert technique.penalty(net)[0].item() == pytest.approx(expected.item(), rel=1e-12)


def test_decoupled_l2_has_no_penalty_and_decays_weights_by_strength_over_m():
    net, (technique,) = networks([{"l2": {"strength": s, "mode": "decoupled"}} for s in (1.0, 4.0)])
    assert technique.penalty(net) is None
    pairs = technique.decay(net)
    assert [p for p, _ in pairs] == [layer.weight for layer in net.linear_layers()]  # weights only
    torch.testing.assert_close(pairs[0][1], torch.tensor([1.0, 4.0], dtype=torch.float64) / 25)


def test_decoupled_and_penalty_l2_take_the_same_plain_sgd_step():
    splits = moons()
    trainer = TrainerConfig(optimizer="sgd", lr=0.5, max_steps=1, eval_every=1, precision="64-true")
    after = {mode: fit([Member(0, RecipeConfig.model_validate({"l2": {"strength": 3.0, "mode": mode}}))],
                       SMALL, trainer, splits).net.state_dict() for mode in ("penalty", "decoupled")}
    for name in after["penalty"]:
        torch.testing.assert_close(after["penalty"][name], after["decoupled"][name], rtol=0, atol=1e-12)


def unneeded_weights(mode: str, steps: int, lr: float = 0.5, strength: float = 1.0) -> tuple[torch.Tensor, ...]:
    """The first-layer weights out of an input that is 0 everywhere (the data
    gives them no gradient), before and after plain SGD under L1, at the
    default network's and moons' scale (200 training points, 1 000 steps)."""
    X, y = make_moons(700, noise=0.3, random_state=0)
    X = np.c_[X, np.zeros(len(X))]
    splits = Splits(X={"train": X[:200], "dev": X[200:], "test": X[200:]},
                    y={"train": y[:200], "dev": y[200:], "test": y[200:]}, classes=np.array([0, 1]))
    model = ModelConfig(hidden=[32, 32], activation="relu", init="he")
    recipe = RecipeConfig.model_validate({"l1": {"strength": strength, "mode": mode}})
    initial = fit([Member(0, recipe)], model, TrainerConfig(optimizer="sgd", lr=lr, max_steps=1, eval_every=1),
                  splits, callbacks=[]).net  # one step moves them by exactly lr*strength/m
    trainer = TrainerConfig(optimizer="sgd", lr=lr, max_steps=steps, eval_every=50)
    result = fit([Member(0, recipe)], model, trainer, splits)
    first = lambda net: net.linear_layers()[0].weight[0, 2].detach().clone()  # noqa: E731
    assert result.curves[0][-1]["dev_accuracy"] > 0.8  # the weights the data needs still learn
    return first(initial), first(result.net)


def test_proximal_l1_puts_a_weight_the_data_does_not_need_at_exactly_zero():
    band = 0.5 * 1.0 / 200  # lr * strength / m
    after_one, after = unneeded_weights("proximal", 1000)
    start = after_one + band * after_one.sign()  # soft threshold undone: the initial weight (no zero crossed yet)
    reached = start.abs() < 999 * band
    assert reached.sum() >= 20  # most of the 32 weights: the test says something
    assert torch.equal(after[reached], torch.zeros(int(reached.sum())))  # exactly 0, not just small
    # those still on their way have moved exactly lr*strength/m per step: the soft threshold's closed form
    torch.testing.assert_close(after[~reached], start[~reached] - 1000 * band * start[~reached].sign(),
                               rtol=0, atol=1e-4)


def test_subgradient_l1_leaves_a_weight_the_data_does_not_need_oscillating_around_zero():
    band = 0.5 * 1.0 / 200
    after_one, at_1000 = unneeded_weights("penalty", 1000)
    _, at_1001 = unneeded_weights("penalty", 1001)
    start = after_one + band * after_one.sign()
    reached = start.abs() < 999 * band
    assert reached.sum() >= 20
    for after in (at_1000, at_1001):  # within lr*strength/m of zero, never at it
        assert (after[reached].abs() <= band * (1 + 1e-4)).all() and (after[reached] != 0).all()
    assert (at_1000[reached].sign() != at_1001[reached].sign()).all()  # and across it at every step
    torch.testing.assert_close(at_1001[reached] - at_1000[reached], -band * at_1000[reached].sign(),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(at_1000[~reached], start[~reached] - 1000 * band * start[~reached].sign(),
                               rtol=0, atol=1e-4)


def test_proximal_l1_is_refused_where_its_first_step_zeroes_every_weight():
    net, (technique,) = networks([{"l1": {"strength": s, "mode": "proximal"}} for s in (1.0, 1e6)])
    (first, threshold), *_ = technique.shrink(net)
    torch.testing.assert_close(threshold, torch.tensor([1.0, 1e6], dtype=torch.float64) / 25)
    assert technique.penalty(net) is None
    with pytest.raises(PipelineError, match=r"proximal L1 step takes trainer.lr \* strength / m = 4e\+03 .*"
                                            r"; seed 1\): .*lower the strengths \(l1.strength 1e\+06\)"):
        check_strengths(net, [technique], torch.ones(2, dtype=torch.float64), 0.1, ["seed 0", "seed 1"])


# --- max-norm -------------------------------------------------------------------------------


def test_max_norm_puts_long_columns_on_the_sphere_and_leaves_short_ones_bit_for_bit():
    net, (technique,) = networks([{"max_norm": {"c": 3.0}}, {"max_norm": {"c": 100.0}}])
    first = net.linear_layers()[0].weight
    with torch.no_grad():
        first[:, :, 0] = torch.tensor([30.0, 40.0, 0.0], dtype=torch.float64)  # incoming norm 50
    short = first[0, :, 1].clone()
    assert short.norm() < 3
    technique.constrain(net)
    torch.testing.assert_close(first[0, :, 0], torch.tensor([1.8, 2.4, 0.0], dtype=torch.float64))  # c = 3
    torch.testing.assert_close(first[1, :, 0], torch.tensor([30.0, 40.0, 0.0], dtype=torch.float64))  # c = 100
    assert torch.equal(first[0, :, 1], short)


def test_max_norm_holds_after_training_with_a_large_learning_rate():
    splits = moons()
    trainer = TrainerConfig(optimizer="sgd", lr=5.0, max_steps=100, eval_every=50)
    bounded = fit([Member(0, RecipeConfig.model_validate({"max_norm": {"c": c}})) for c in (0.5, 1.5)],
                  SMALL, trainer, splits)
    for k, c in enumerate((0.5, 1.5)):
        assert weight_figures(bounded.net, 0.01)[k]["max_column_norm"] <= c + 1e-6
    free = fit([Member(0, RecipeConfig())], SMALL, trainer, splits)
    assert weight_figures(free.net, 0.01)[0]["max_column_norm"] > 1.5


# --- dropout ----------------------------------------------------------------------------------


def dropout_scales(net, m: int) -> list[torch.Tensor]:
    return [layer.scales(m) for layer in net.layers if isinstance(layer, StackedDropout)]


def test_each_network_drops_with_its_own_keep_probability_and_scales_by_its_inverse():
    keeps = [0.3, 0.5, 0.9]
    net, _ = networks([{"dropout": {"keep_prob": [k, k]}} for k in keeps], n_features=2)
    scales = dropout_scales(net, 20_000)[0]  # (K, m, units)
    for k, keep in enumerate(keeps):
        kept = scales[k] != 0
        assert kept.double().mean().item() == pytest.approx(keep, abs=0.01)
        torch.testing.assert_close(scales[k][kept], torch.full_like(scales[k][kept], 1 / keep))
        assert scales[k].mean().item() == pytest.approx(1.0, abs=0.02)  # inverted: the mean is kept


def test_fresh_masks_change_every_step_and_fixed_masks_do_not():
    fresh, _ = networks([{"dropout": {"keep_prob": [0.5, 0.5]}}])
    fixed, _ = networks([{"dropout": {"keep_prob": [0.5, 0.5], "mask": "fixed"}}])
    assert not torch.equal(dropout_scales(fresh, 50)[0], dropout_scales(fresh, 50)[0])
    assert torch.equal(dropout_scales(fixed, 50)[0], dropout_scales(fixed, 50)[0])


def test_fixed_masks_are_the_course_notebooks():
    """np.random.seed(1) before the forward pass, then D = np.random.rand(units, m) < keep_prob per layer."""
    batch = Batch(seeds=(0, 5), n_features=2, hidden=(20, 3), n_train=211, dtype=torch.float64)
    model = ModelConfig(hidden=[20, 3], activation="relu", init="he")
    recipes = [RecipeConfig.model_validate({"dropout": {"keep_prob": [0.86, 0.86], "mask": "fixed"}})] * 2
    net, _ = make_network(batch, 2, model, recipes)
    first, second = dropout_scales(net, 211)
    np.random.seed(1)
    d1 = np.random.rand(20, 211) < 0.86
    d2 = np.random.rand(3, 211) < 0.86
    for k in range(2):  # every seed gets the notebook's masks
        assert np.array_equal(first[k].numpy().T != 0, d1)
        assert np.array_equal(second[k].numpy().T != 0, d2)


def test_input_dropout_comes_first_and_keep_one_adds_no_layer():
    net, _ = networks([{"dropout": {"keep_prob": [1.0, 0.5], "input_keep_prob": 0.8}}])
    assert isinstance(net.layers[0], StackedDropout)
    assert sum(isinstance(layer, StackedDropout) for layer in net.layers) == 2  # input and layer 2 only


def test_dropout_is_the_identity_in_evaluation():
    net, _ = networks([{"dropout": {"keep_prob": [0.5, 0.5]}}])
    plain, _ = networks([{}])
    with torch.no_grad():
        for theirs, ours in zip(plain.linear_layers(), net.linear_layers()):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    x = torch.randn(100, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), plain.eval()(x))
        assert not torch.equal(net.train()(x), plain(x))


# --- batch norm -----------------------------------------------------------------------------


@pytest.mark.parametrize("position, order", [
    ("before_activation", [StackedBatchNorm, nn.ReLU]),
    ("after_activation", [nn.ReLU, StackedBatchNorm]),
])
def test_batch_norm_sits_where_configured(position, order):
    net, _ = networks([{"batch_norm": {"position": position}}])
    assert [type(layer) for layer in net.layers[1:3]] == order


def test_batch_norm_statistics_move_in_training_only_and_evaluation_does_not_depend_on_the_batch():
    net, _ = networks([{"batch_norm": {}}] * 2)
    norm = net.layers[1]
    x = torch.randn(64, 3, dtype=torch.float64)
    with torch.no_grad():
        net.eval()(x)
        assert not norm.running_mean.any()
        net.train()(x * 3 + 1)
        assert norm.running_mean.abs().min() > 0
        net.eval()
        alone, together = net(x[:1]), net(x)[:, :1]
        with_others = net(torch.cat([x[:1], 100 * x[1:]]))[:, :1]
    torch.testing.assert_close(alone, together)
    torch.testing.assert_close(alone, with_others)


# --- augmentation --------------------------------------------------------------------------


def test_jitter_has_each_networks_std_and_never_touches_its_input():
    stds = [0.1, 0.4]
    augmentation = Augmentation([AugmentationConfig(jitter_std=s) for s in stds], batch_of(k=2, n_features=2))
    x = torch.zeros(2, 40_000, 2, dtype=torch.float64)
    jittered = augmentation.augment(x)
    for k, std in enumerate(stds):
        assert jittered[k].std().item() == pytest.approx(std, rel=0.02)
    assert not x.any()  # a copy: the batch itself is untouched


def test_augmentation_never_touches_evaluation_data():
    splits = moons()
    before = {part: splits.X[part].copy() for part in splits.X}
    trainer = TrainerConfig(optimizer="adam", lr=0.02, max_steps=60, eval_every=30)
    augmented = fit([Member(0, RecipeConfig.model_validate({"augmentation": {"jitter_std": 0.3}}))], SMALL, trainer,
                    splits)
    plain = fit([Member(0, RecipeConfig())], SMALL, trainer, splits)
    assert all(np.array_equal(before[part], splits.X[part]) for part in splits.X)
    assert not torch.equal(augmented.net.linear_layers()[0].weight, plain.net.linear_layers()[0].weight)


@pytest.mark.parametrize("shape, pixel, rows, columns", [((8, 8), (4, 4), {3, 4, 5}, {3, 4, 5}),
                                                         ((4, 6), (1, 3), {0, 1, 2}, {2, 3, 4})])
def test_image_shifts_move_a_pixel_by_whole_pixels_up_to_max_shift(shape, pixel, rows, columns):
    config = AugmentationConfig(max_shift=1)
    augmentation = Augmentation([config, config], batch_of(k=2, n_features=shape[0] * shape[1], image_shape=shape))
    image = torch.zeros(2, 300, *shape, dtype=torch.float64)
    image[:, :, pixel[0], pixel[1]] = 1.0
    moved = augmentation.augment(image.reshape(2, 300, -1)).reshape(2, 300, *shape)
    hits = (moved > 0.5).nonzero()
    assert len(hits) == 600  # every pixel survives, moved by whole pixels
    assert set(hits[:, 2].tolist()) == rows and set(hits[:, 3].tolist()) == columns


def test_image_transforms_refuse_points():
    with pytest.raises(PipelineError, match="need an image data set"):
        Augmentation([AugmentationConfig(max_rotation=10)], batch_of(k=1, n_features=2))


# --- random streams ---------------------------------------------------------------------


def test_streams_hand_each_seed_its_own_draws_and_a_shared_seed_the_same():
    batch = Batch(seeds=(4, 7, 4), n_features=2, hidden=(3,), n_train=10, dtype=torch.float64)
    draws = batch.streams("dropout 0").draw(lambda g: torch.rand(5, generator=g))
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])
    alone = Batch(seeds=(7,), n_features=2, hidden=(3,), n_train=10, dtype=torch.float64)
    assert torch.equal(alone.streams("dropout 0").draw(lambda g: torch.rand(5, generator=g))[0], draws[1])
    other = batch.streams("dropout 1").draw(lambda g: torch.rand(5, generator=g))
    assert not torch.equal(other[0], draws[0])  # each purpose its own stream


# --- effects, and the values paths sweep -----------------------------------------------


def test_l1_makes_many_more_weights_near_zero_and_l2_shrinks_them():
    splits = moons()
    trainer = TrainerConfig(optimizer="adam", lr=0.02, max_steps=300, eval_every=100)
    recipes = [{}, {"l1": {"strength": 0.3}}, {"l2": {"strength": 5.0}}]
    figures = [weight_figures(fit([Member(0, RecipeConfig.model_validate(r))], SMALL, trainer, splits).net, 0.01)[0]
               for r in recipes]
    assert figures[1]["sparsity"] > figures[0]["sparsity"] + 0.3
    assert figures[2]["squared_weight_sum"] < 0.5 * figures[0]["squared_weight_sum"]


@pytest.mark.parametrize("name", [name for name, t in TECHNIQUES.items() if t.sweeps])
def test_a_path_sweeps_its_techniques_value(name):
    technique = TECHNIQUES[name]
    recipe = {"l1": {"strength": 1.0}, "l2": {"strength": 1.0}, "max_norm": {"c": 1.0},
              "dropout": {"keep_prob": [0.5, 0.5]}, "augmentation": {"jitter_std": 0.1}}[name]
    path = PathConfig(sweep=name, recipe={name: recipe}, values=[0.2, 0.9])
    swept = getattr(path.recipe_at(0.2), name)
    expected = [0.2, 0.2] if name == "dropout" else 0.2  # every hidden layer's keep probability
    assert getattr(swept, technique.sweeps) == expected
    with pytest.raises(ValueError, match=f"not a valid {name}.{technique.sweeps}"):
        PathConfig(sweep=name, recipe={name: recipe}, values=[0.5, -1.0])
