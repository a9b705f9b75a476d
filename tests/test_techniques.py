"""The math of L1, elastic net, per-layer and decoupled L2, max-norm, dropout
masks, batch normalization, augmentation, and their composition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.analysis import weight_figures
from pipeline.config import (
    AugmentationConfig,
    BatchNormConfig,
    DropoutConfig,
    ElasticNetConfig,
    L1Config,
    L2Config,
    MaxNormConfig,
    ModelConfig,
    RecipeConfig,
    TrainerConfig,
    load_params,
)
from pipeline.datasets import materialize
from pipeline.errors import PipelineError
from pipeline.model import MLP, InvertedDropout
from pipeline.regularization import L1, L2, Augmentation, ElasticNet, MaxNorm, build
from pipeline.split import split
from pipeline.training import Classifier, fit

ROOT = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(hidden=[4, 3], activation="relu", init="he")
pytestmark = pytest.mark.filterwarnings("ignore:.*treespec, LeafSpec")


def net_with(recipe: RecipeConfig = RecipeConfig(), seed: int = 0, n_features: int = 3) -> MLP:
    torch.manual_seed(seed)
    net = MLP(n_features, 2, SMALL, recipe)
    with torch.no_grad():
        for layer in net.linear_layers():
            layer.bias.uniform_(-1, 1)  # non-zero biases, so "biases untouched" can fail
    return net


def gradients(value: torch.Tensor, net: MLP) -> dict[str, torch.Tensor]:
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
    return {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(params.items(), grads)}


def batch(m: int = 30, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 3, generator=generator)
    return x, (x[:, 0] > 0).long()


# --- penalties against their closed forms ----------------------------------------------


def test_l1_gradient_is_strength_over_m_times_sign_and_spares_biases():
    net, lam, m = net_with(), 0.7, 25
    penalty = L1(L1Config(strength=lam)).penalty(net, m)
    weights = [layer.weight.detach() for layer in net.linear_layers()]
    assert penalty.item() == pytest.approx(lam / m * sum(w.abs().sum().item() for w in weights), rel=1e-6)
    grads = gradients(penalty, net)
    for name, param in net.named_parameters():
        expected = lam / m * param.detach().sign() if name.endswith("weight") else torch.zeros_like(param)
        torch.testing.assert_close(grads[name], expected, rtol=0, atol=1e-7)


def test_l1_with_regularize_bias_penalizes_biases():
    net, lam, m = net_with(), 0.7, 25
    grads = gradients(L1(L1Config(strength=lam, regularize_bias=True)).penalty(net, m), net)
    for layer, name in zip(net.linear_layers(), ("0", "2", "4")):
        torch.testing.assert_close(grads[f"{name}.bias"], lam / m * layer.bias.detach().sign())


def test_per_layer_strengths_hit_the_right_matrices():
    net, m = net_with(), 10
    strengths = [0.0, 2.0, 5.0]
    l1 = gradients(L1(L1Config(strength=99, per_layer=strengths)).penalty(net, m), net)
    l2 = gradients(L2(L2Config(strength=99, per_layer=strengths)).penalty(net, m), net)
    for layer, name, s in zip(net.linear_layers(), ("0", "2", "4"), strengths):
        torch.testing.assert_close(l1[f"{name}.weight"], s / m * layer.weight.detach().sign(), rtol=0, atol=1e-7)
        torch.testing.assert_close(l2[f"{name}.weight"], s / m * layer.weight.detach(), rtol=0, atol=1e-7)
        assert torch.count_nonzero(l2[f"{name}.bias"]) == 0


def test_elastic_net_gradient_is_the_sum_of_both_closed_forms():
    net, m = net_with(), 20
    penalty = ElasticNet(ElasticNetConfig(l1_strength=0.3, l2_strength=1.5)).penalty(net, m)
    grads = gradients(penalty, net)
    for name, param in net.named_parameters():
        w = param.detach()
        expected = 0.3 / m * w.sign() + 1.5 / m * w if name.endswith("weight") else torch.zeros_like(w)
        torch.testing.assert_close(grads[name], expected, rtol=0, atol=1e-6)


def test_decoupled_l2_is_weight_decay_on_weights_only():
    net, (x, y) = net_with(), batch(m=40)
    trainer = TrainerConfig(optimizer="adam", lr=0.01, max_steps=1, eval_every=1)
    recipe = RecipeConfig(l2=L2Config(strength=2.0, mode="decoupled"))
    module = Classifier(net, build(recipe, 0), trainer, train=(x, y), dev=(x[:0], y[:0]), seed=0)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    decays = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in net.named_parameters():
        assert decays[id(param)] == (pytest.approx(2.0 / 40) if name.endswith("weight") else 0.0)
    # decoupled means no penalty term in the cost
    assert module.objective(x, y).item() == pytest.approx(net.loss(net(x), y).item())


def test_decoupled_and_penalty_l2_take_the_same_plain_sgd_step():
    x, y = batch(m=40)
    after = {}
    for mode in ("penalty", "decoupled"):
        net = net_with()
        trainer = TrainerConfig(optimizer="sgd", lr=0.5, max_steps=1, eval_every=1)
        recipe = RecipeConfig(l2=L2Config(strength=3.0, mode=mode))
        module = Classifier(net, build(recipe, 0), trainer, train=(x, y), dev=(x[:0], y[:0]), seed=0)
        optimizer = module.configure_optimizers()
        optimizer.zero_grad()
        module.objective(x, y).backward()
        optimizer.step()
        after[mode] = [p.detach().clone() for p in net.parameters()]
    for a, b in zip(after["penalty"], after["decoupled"]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# --- max-norm ------------------------------------------------------------------


def test_max_norm_bounds_every_incoming_vector_and_leaves_short_ones_alone():
    net = net_with()
    with torch.no_grad():
        net.linear_layers()[0].weight[0] = torch.tensor([30.0, 40.0, 0.0])  # norm 50
    short_row = net.linear_layers()[0].weight[1].detach().clone()
    assert short_row.norm() < 3
    MaxNorm(MaxNormConfig(c=3.0)).after_optimizer_step(net)
    first = net.linear_layers()[0].weight
    torch.testing.assert_close(first[0], torch.tensor([1.8, 2.4, 0.0]))  # scaled onto the sphere
    assert torch.equal(first[1], short_row)  # bit for bit untouched


def test_max_norm_holds_after_training_with_a_large_learning_rate():
    config, splits = moons_run(RecipeConfig(max_norm=MaxNormConfig(c=1.5)), optimizer="sgd", lr=5.0, max_steps=100)
    net = fit(config, splits).net
    for layer in net.linear_layers():
        assert layer.weight.norm(dim=1).max().item() <= 1.5 + 1e-6
    unbounded = fit(moons_run(RecipeConfig(), optimizer="sgd", lr=5.0, max_steps=100)[0], splits).net
    assert max(layer.weight.norm(dim=1).max().item() for layer in unbounded.linear_layers()) > 1.5


# --- dropout masks ---------------------------------------------------------------------


def dropout_masks(net: MLP, x: torch.Tensor) -> list[torch.Tensor]:
    """Which units each dropout layer zeroed on one forward pass."""
    seen = []
    hooks = [layer.register_forward_hook(lambda mod, inp, out: seen.append((out == 0) & (inp[0] != 0)))
             for layer in net.dropout_layers()]
    net.train()(x)
    for hook in hooks:
        hook.remove()
    return seen


def test_fixed_masks_repeat_and_fresh_masks_do_not():
    x = torch.ones(50, 3) + 1  # positive inputs: relu units are active, so zeros come from dropout
    torch.manual_seed(0)
    model = ModelConfig(hidden=[20, 3], activation="sigmoid", init="he")
    fixed = MLP(3, 2, model, RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.5], mask="fixed")))
    fresh = MLP(3, 2, model, RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.5])))
    first, second = dropout_masks(fixed, x), dropout_masks(fixed, x)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    first, second = dropout_masks(fresh, x), dropout_masks(fresh, x)
    assert not torch.equal(first[0], second[0])


def test_fixed_masks_are_the_course_notebooks():
    """np.random.seed(1) before the forward pass, then D = np.random.rand(units, m) < keep_prob per layer."""
    model = ModelConfig(hidden=[20, 3], activation="sigmoid", init="he")
    net = MLP(2, 2, model, RecipeConfig(dropout=DropoutConfig(keep_prob=[0.86, 0.86], mask="fixed")))
    masks = dropout_masks(net, torch.ones(211, 2))
    np.random.seed(1)
    d1 = np.random.rand(20, 211) < 0.86
    d2 = np.random.rand(3, 211) < 0.86
    assert np.array_equal(~masks[0].numpy().T, d1)
    assert np.array_equal(~masks[1].numpy().T, d2)


def test_input_dropout_comes_first():
    net = MLP(3, 2, SMALL, RecipeConfig(dropout=DropoutConfig(keep_prob=[1.0, 1.0], input_keep_prob=0.8)))
    assert isinstance(net[0], InvertedDropout) and net[0].keep_prob == 0.8
    assert len(net.dropout_layers()) == 1


# --- batch normalization -------------------------------------------------------------


@pytest.mark.parametrize("position, order", [
    ("before_activation", [nn.Linear, nn.BatchNorm1d, nn.ReLU]),
    ("after_activation", [nn.Linear, nn.ReLU, nn.BatchNorm1d]),
])
def test_batch_norm_follows_each_hidden_linear_layer(position, order):
    net = MLP(3, 2, SMALL, RecipeConfig(batch_norm=BatchNormConfig(position=position)))
    assert [type(layer) for layer in net] == order * 2 + [nn.Linear]


def test_batch_norm_statistics_update_in_train_mode_only():
    net = net_with(RecipeConfig(batch_norm=BatchNormConfig()))
    norm = net[1]
    x, _ = batch(m=64)
    net.eval()(x)
    assert torch.equal(norm.running_mean, torch.zeros(4)) and norm.num_batches_tracked == 0
    net.train()(x)
    assert norm.num_batches_tracked == 1 and torch.count_nonzero(norm.running_mean) > 0


def test_batch_norm_eval_output_does_not_depend_on_the_batch():
    net = net_with(RecipeConfig(batch_norm=BatchNormConfig()))
    x, _ = batch(m=64)
    net.train()(x * 3 + 1)  # move the running statistics away from their start
    net.eval()
    with torch.no_grad():
        alone = net(x[:1])
        together = net(x)[:1]
        with_others = net(torch.cat([x[:1], 100 * x[1:]]))[:1]
    torch.testing.assert_close(alone, together)
    torch.testing.assert_close(alone, with_others)


# --- augmentation ----------------------------------------------------------------------


def test_jitter_perturbs_training_batches_with_the_configured_std():
    augment = Augmentation(AugmentationConfig(jitter_std=0.2), image_shape=None, seed=0)
    x = torch.zeros(50_000, 2)
    jittered = augment.augment(x)
    assert jittered.std().item() == pytest.approx(0.2, rel=0.02)
    assert torch.equal(x, torch.zeros(50_000, 2))  # a copy, the input is untouched


def test_augmentation_never_touches_evaluation_data():
    config, splits = moons_run(RecipeConfig(augmentation=AugmentationConfig(jitter_std=0.3)), max_steps=60)
    before = {part: (splits.X[part].copy(), splits.y[part].copy()) for part in splits.X}
    augmented = fit(config, splits).net
    plain = fit(config.model_copy(update={"regularization": RecipeConfig()}), splits).net
    for part, (X, y) in before.items():
        assert np.array_equal(X, splits.X[part]) and np.array_equal(y, splits.y[part])
    # and the augmentation did act on training: the two networks differ
    assert not torch.equal(augmented[0].weight, plain[0].weight)


def test_image_shift_moves_a_pixel_by_at_most_max_shift():
    augment = Augmentation(AugmentationConfig(max_shift=1), image_shape=(8, 8), seed=0)
    image = torch.zeros(200, 8, 8)
    image[:, 4, 4] = 1.0
    moved = augment.augment(image.reshape(200, 64)).reshape(200, 8, 8)
    rows, cols = (moved > 0.5).nonzero()[:, 1], (moved > 0.5).nonzero()[:, 2]
    assert len(rows) == 200  # the pixel survives, shifted by whole pixels
    assert set(rows.tolist()) == {3, 4, 5} and set(cols.tolist()) == {3, 4, 5}


def test_image_transforms_refuse_points():
    with pytest.raises(PipelineError, match="need an image data set"):
        Augmentation(AugmentationConfig(max_rotation=10), image_shape=None, seed=0)


# --- composition and effects ----------------------------------------------------------


def moons_run(recipe: RecipeConfig, **trainer):
    params = load_params(ROOT / "params.yaml")
    config = params.run("moons", "baseline", 0)
    config = config.model_copy(update={
        "regularization": recipe,
        "trainer": config.trainer.model_copy(update=trainer),
    })
    return config, split(materialize(config.dataset.source), config.dataset.split)


def test_dropout_max_norm_applies_both():
    recipe = RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.5]), max_norm=MaxNormConfig(c=1.0))
    config, splits = moons_run(recipe, max_steps=200)
    net = fit(config, splits).net
    assert len(net.dropout_layers()) == 2
    assert weight_figures(net, 0.01)["max_column_norm"] <= 1.0 + 1e-6


def test_l1_makes_many_more_weights_near_zero_than_baseline():
    config, splits = moons_run(RecipeConfig())
    baseline = weight_figures(fit(config, splits).net, 0.01)["sparsity"]
    l1_config = config.model_copy(update={"regularization": RecipeConfig(l1=L1Config(strength=0.1))})
    sparse = weight_figures(fit(l1_config, splits).net, 0.01)["sparsity"]
    assert sparse > baseline + 0.3, (baseline, sparse)


def test_image_shift_respects_a_non_square_shape():
    # 4 rows x 6 columns: a shift moves along each axis by whole pixels, never wrapping a row
    augment = Augmentation(AugmentationConfig(max_shift=1), image_shape=(4, 6), seed=0)
    image = torch.zeros(300, 4, 6)
    image[:, 1, 3] = 1.0
    moved = augment.augment(image.reshape(300, 24)).reshape(300, 4, 6)
    hits = (moved > 0.5).nonzero()
    assert len(hits) == 300
    assert set(hits[:, 1].tolist()) == {0, 1, 2} and set(hits[:, 2].tolist()) == {2, 3, 4}
