"""The batched engine against the same networks trained alone.

(a) One optimizer step of every technique: each network of a batch of three
    (different seeds and strengths) gets the gradient and the update that a
    plain torch network (nn.Linear, nn.BatchNorm1d, torch.optim) computes with
    the penalty written out in closed form, the same data, masks and noise:
    to 1e-6 in float32, 1e-12 in float64.
(b) A network's whole training does not depend on its batch-mates: seeds
    [1, 3], [0, 1, 2, 3, 4] and [3] alone give the same results, bit for bit.
    (Bit for bit needs the batch to line up with the CPU's vector lanes, as
    here: 64 examples, fewer than 16 networks. PyTorch computes a tensor's
    trailing elements with scalar code that rounds exp or sqrt differently,
    and which elements trail depends on the batch's shape.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.engine.module import BatchTraining
from pipeline.engine.network import StackedLinear, as_tensors, make_network
from pipeline.techniques import Batch, RecipeConfig
from pipeline.techniques.batch_norm import StackedBatchNorm
from pipeline.techniques.dropout import StackedDropout

SMALL = ModelConfig(hidden=[6, 5], activation="relu", init="he")
SEEDS = (0, 3, 7)
M = 40  # training examples
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}

# technique -> one recipe per network of the batch; strengths differ as along a path
RECIPES = {
    "l1": [{"l1": {"strength": s}} for s in (0.5, 1.0, 4.0)],
    "l1_per_layer_with_bias": [{"l1": {"strength": 0.0, "per_layer": [0.0, s, 3.0], "regularize_bias": True}}
                               for s in (0.5, 1.0, 2.0)],
    "l1_proximal": [{"l1": {"strength": s, "mode": "proximal"}} for s in (0.5, 4.0, 40.0)],
    "l2": [{"l2": {"strength": s}} for s in (0.5, 2.0, 8.0)],
    "l2_per_layer_with_bias": [{"l2": {"strength": 0.0, "per_layer": [s, 0.0, 1.0], "regularize_bias": True}}
                               for s in (1.0, 2.0, 5.0)],
    "l2_decoupled": [{"l2": {"strength": s, "mode": "decoupled"}} for s in (1.0, 4.0, 10.0)],
    "elastic_net": [{"elastic_net": {"l1_strength": a, "l2_strength": b}} for a, b in ((0.1, 1), (0.5, 2), (1, 0))],
    "max_norm": [{"max_norm": {"c": c}} for c in (0.3, 0.6, 5.0)],
    "dropout": [{"dropout": {"keep_prob": [k, 0.7], "input_keep_prob": 0.9}} for k in (0.5, 0.8, 1.0)],
    "dropout_fixed_mask": [{"dropout": {"keep_prob": [k, k], "mask": "fixed"}} for k in (0.5, 0.86, 1.0)],
    "batch_norm": [{"batch_norm": {"momentum": 0.1}}] * 3,
    "batch_norm_after_activation": [{"batch_norm": {"position": "after_activation", "momentum": 0.3}}] * 3,
    "augmentation": [{"augmentation": {"jitter_std": s}} for s in (0.05, 0.2, 0.5)],
    "dropout_max_norm_l2": [{"dropout": {"keep_prob": [0.6, 0.6]}, "max_norm": {"c": 0.5}, "l2": {"strength": s}}
                            for s in (0.5, 1.0, 2.0)],
}


def moons(n_train: int = M, n_dev: int = 30, seed: int = 1) -> Splits:
    X, y = make_moons(n_train + n_dev, noise=0.3, random_state=seed)
    return Splits(X={"train": X[:n_train], "dev": X[n_train:], "test": X[:0]},
                  y={"train": y[:n_train], "dev": y[n_train:], "test": y[:0]}, classes=np.array([0, 1]))


# --- (a) one step against plain torch -------------------------------------------------


class Scale(nn.Module):
    """Dropout as the batch drew it for one network: multiply by its scales."""

    def __init__(self, scales: torch.Tensor):
        super().__init__()
        self.scales = scales

    def forward(self, h):
        return h * self.scales


def batched_step(recipes: list[dict], optimizer: str, dtype: torch.dtype, batch_size: int | None = None):
    """One step of the engine on three networks; what it saw and did."""
    splits = moons()
    trainer = TrainerConfig(optimizer=optimizer, lr=0.05, max_steps=1, eval_every=1, batch_size=batch_size)
    batch = Batch(seeds=SEEDS, n_features=2, hidden=tuple(SMALL.hidden), n_train=M, dtype=dtype)
    net, techniques = make_network(batch, 2, SMALL, [RecipeConfig.model_validate(r) for r in recipes])
    module = BatchTraining(net, techniques, trainer, batch, as_tensors(splits.X["train"], splits.y["train"], dtype),
                           as_tensors(splits.X["dev"], splits.y["dev"], dtype), labels=[""] * 3)
    seen = {"scales": {}}
    for index, layer in enumerate(net.layers):
        if isinstance(layer, StackedDropout):
            draw = layer.scales

            def recorded(m, draw=draw, index=index):
                seen["scales"][index] = draw(m)
                return seen["scales"][index]

            layer.scales = recorded
    objective = module.objective

    def recorded_objective(x, y):
        seen["x"], seen["y"] = x.detach().clone(), y
        return objective(x, y)

    module.objective = recorded_objective
    before = {name: value.detach().clone() for name, value in net.state_dict().items()}
    net.train()
    module.step(module.configure_optimizers())
    grads = {name: p.grad.detach().clone() for name, p in net.named_parameters()}
    return net, before, grads, seen


def reference(net, before: dict, k: int, seen: dict) -> list[nn.Module]:
    """Network k alone, as plain torch modules holding its initial weights."""
    layers = []
    for index, layer in enumerate(net.layers):
        if isinstance(layer, StackedLinear):
            fan_in, fan_out = layer.weight.shape[1:]
            plain = nn.Linear(fan_in, fan_out, dtype=layer.weight.dtype)
            with torch.no_grad():
                plain.weight.copy_(before[f"{index}.weight"][k].T)
                plain.bias.copy_(before[f"{index}.bias"][k, 0])
        elif isinstance(layer, StackedBatchNorm):
            plain = nn.BatchNorm1d(layer.weight.shape[1], eps=layer.eps, momentum=layer.momentum,
                                   dtype=layer.weight.dtype)
            with torch.no_grad():
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(plain, name).copy_(before[f"{index}.{name}"][k])
        elif isinstance(layer, StackedDropout):
            plain = Scale(seen["scales"][index][k])
        else:
            plain = type(layer)()
        layers.append(plain)
    return layers


def closed_form_penalty(recipe: RecipeConfig, linears: list[nn.Linear], m: int) -> torch.Tensor:
    """The penalties as docs/recipes.md writes them: strength/m * sum |W| (L1),
    strength/(2m) * sum W^2 (L2), both for elastic net."""
    def matrices(include_bias):
        return [[layer.weight, layer.bias] if include_bias else [layer.weight] for layer in linears]

    total = torch.zeros((), dtype=linears[0].weight.dtype)
    if recipe.l1 and recipe.l1.mode == "penalty":
        strengths = recipe.l1.per_layer or [recipe.l1.strength] * len(linears)
        for s, params in zip(strengths, matrices(recipe.l1.regularize_bias)):
            total = total + s / m * sum(p.abs().sum() for p in params)
    if recipe.l2 and recipe.l2.mode == "penalty":
        strengths = recipe.l2.per_layer or [recipe.l2.strength] * len(linears)
        for s, params in zip(strengths, matrices(recipe.l2.regularize_bias)):
            total = total + s / (2 * m) * sum(p.pow(2).sum() for p in params)
    if recipe.elastic_net:
        for params in matrices(recipe.elastic_net.regularize_bias):
            total = total + recipe.elastic_net.l1_strength / m * sum(p.abs().sum() for p in params)
            total = total + recipe.elastic_net.l2_strength / (2 * m) * sum(p.pow(2).sum() for p in params)
    return total


def reference_step(layers: list[nn.Module], recipe: RecipeConfig, x, y, optimizer: str, lr: float):
    """One step of network k alone with torch's own optimizers (AdamW or SGD's
    weight_decay for decoupled L2), proximal L1 as a soft threshold by hand
    (torch's softshrink) and max-norm as a projection by hand."""
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    h = x
    for layer in layers:
        h = layer(h)
    loss = nn.functional.binary_cross_entropy_with_logits(h[:, 0], y.to(h.dtype))
    loss = loss + closed_form_penalty(recipe, linears, M)
    params = [p for layer in layers for p in layer.parameters()]
    decoupled = recipe.l2 is not None and recipe.l2.mode == "decoupled"
    if decoupled:
        decay = recipe.l2.strength / M
        groups = [{"params": [layer.weight for layer in linears], "weight_decay": decay},
                  {"params": [p for p in params if all(p is not layer.weight for layer in linears)],
                   "weight_decay": 0.0}]
        opt = (torch.optim.AdamW if optimizer == "adam" else torch.optim.SGD)(groups, lr=lr)
    else:
        opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[optimizer](params, lr=lr)
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in params]
    opt.step()
    if recipe.l1 and recipe.l1.mode == "proximal":
        with torch.no_grad():
            for layer in linears:
                layer.weight.copy_(nn.functional.softshrink(layer.weight, lr * recipe.l1.strength / M))
    if recipe.max_norm:
        with torch.no_grad():
            for layer in linears:  # rows of torch's (out, in): each neuron's incoming weights
                norms = layer.weight.norm(dim=1, keepdim=True)
                layer.weight.mul_(torch.where(norms > recipe.max_norm.c, recipe.max_norm.c / norms, 1.0))
    return grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("technique", list(RECIPES))
def test_each_network_steps_as_it_would_alone(technique, optimizer, dtype):
    recipes = RECIPES[technique]
    net, before, grads, seen = batched_step(recipes, optimizer, dtype)
    tolerance = TOLERANCE[dtype]
    after = net.state_dict()
    for k in range(len(SEEDS)):
        layers = reference(net, before, k, seen)
        y = seen["y"] if seen["y"].dim() == 1 else seen["y"][k]
        reference_grads = reference_step(layers, RecipeConfig.model_validate(recipes[k]), seen["x"][k], y,
                                         optimizer, lr=0.05)
        batched = []
        for index, layer in enumerate(net.layers):
            if isinstance(layer, StackedLinear):
                batched += [(f"{index}.weight", lambda t: t.T), (f"{index}.bias", lambda t: t[0])]
            elif isinstance(layer, StackedBatchNorm):
                batched += [(f"{index}.weight", lambda t: t), (f"{index}.bias", lambda t: t)]
        plain = [p for layer in layers for p in layer.parameters()]
        assert len(plain) == len(batched) == len(reference_grads)
        for (name, view), p, g in zip(batched, plain, reference_grads):
            torch.testing.assert_close(view(grads[name][k]), g, rtol=0, atol=tolerance, msg=f"{name} gradient")
            # Adam's first step is lr * g / (|g| + 1e-8): where the gradient is
            # zero up to rounding (a bias just before batch norm), that rounding
            # decides the step, so only clearly non-zero gradients are compared
            compared = g.abs() > 100 * tolerance if optimizer == "adam" else torch.ones_like(g, dtype=torch.bool)
            torch.testing.assert_close(view(after[name][k])[compared], p.detach()[compared], rtol=0, atol=tolerance,
                                       msg=f"{name} after the step")
        for index, layer in enumerate(layers):  # batch norm's running statistics moved the same way
            if isinstance(layer, nn.BatchNorm1d):
                for name in ("running_mean", "running_var"):
                    torch.testing.assert_close(after[f"{index}.{name}"][k], getattr(layer, name), rtol=0,
                                               atol=tolerance)
        # and the step did something, so the comparison could fail
        first = batched[0][0]
        assert not torch.equal(before[first][k], after[first][k])


def test_minibatches_are_each_networks_own():
    net, before, grads, seen = batched_step(RECIPES["l2"], "sgd", torch.float64, batch_size=10)
    x = seen["x"]
    assert x.shape == (3, 10, 2)
    assert not torch.equal(x[0], x[1])  # each network draws its own order
    train = torch.as_tensor(moons().X["train"])
    for k in range(3):  # and each minibatch is ten distinct training points
        rows = {tuple(row.tolist()) for row in x[k]}
        assert len(rows) == 10 and rows <= {tuple(row.tolist()) for row in train}
    layers = reference(net, before, 1, seen)
    reference_grads = reference_step(layers, RecipeConfig.model_validate(RECIPES["l2"][1]), x[1], seen["y"][1],
                                     "sgd", lr=0.05)
    torch.testing.assert_close(grads["0.weight"][1].T, reference_grads[0], rtol=0, atol=1e-12)


# --- (b) independence from batch-mates, whole trainings ----------------------------------

INDEPENDENCE = {
    "baseline": {},
    **{name: recipes[1] for name, recipes in RECIPES.items()},
    "early_stopping": {"early_stopping": {"patience": 1}},
}


DEFAULT = ModelConfig(hidden=[32, 32], activation="relu", init="he")  # conf/model/mlp.yaml


def trained(members: list[Member], batch_size: int | None = None):
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=60, eval_every=10, batch_size=batch_size)
    return fit(members, DEFAULT, trainer, moons(n_train=64, n_dev=64))


def network(result, k: int) -> dict[str, torch.Tensor]:
    return {name: value[k] for name, value in result.net.state_dict().items()}


def first_weights(result, k: int) -> torch.Tensor:
    return result.net.linear_layers()[0].weight[k]


def assert_same_network(a, i: int, b, j: int) -> None:
    first, second = network(a, i), network(b, j)
    assert all(torch.equal(first[name], second[name]) for name in first), [
        name for name in first if not torch.equal(first[name], second[name])]
    assert a.curves[i] == b.curves[j] and a.steps[i] == b.steps[j] and a.figures[i] == b.figures[j]


@pytest.mark.parametrize("technique", list(INDEPENDENCE))
def test_a_networks_training_does_not_depend_on_its_batch_mates(technique):
    recipe = RecipeConfig.model_validate(INDEPENDENCE[technique])
    few = trained([Member(seed, recipe) for seed in (1, 3)])
    many = trained([Member(seed, recipe) for seed in (0, 1, 2, 3, 4)])
    alone = trained([Member(3, recipe)])
    assert_same_network(few, 0, many, 1)
    assert_same_network(few, 1, many, 3)
    assert_same_network(alone, 0, many, 3)
    # and the seeds made different networks, so the comparisons could fail
    assert not torch.equal(first_weights(many, 1), first_weights(many, 3))


def test_minibatch_training_and_path_members_are_independent_too():
    weak, strong = (RecipeConfig.model_validate({"l2": {"strength": s}, "dropout": {"keep_prob": [0.7, 0.7]}})
                    for s in (0.5, 5.0))
    few = trained([Member(1, weak), Member(3, weak)], batch_size=16)
    path = trained([Member(0, weak), Member(1, weak), Member(1, strong), Member(3, weak), Member(3, strong)],
                   batch_size=16)
    assert_same_network(few, 0, path, 1)
    assert_same_network(few, 1, path, 3)
    # the same seed at two strengths: the same draws (paired), different networks
    assert not torch.equal(first_weights(path, 1), first_weights(path, 2))


@pytest.mark.parametrize("scale, message", [
    (1e300, "the train features are not finite in float32"),  # 1e300 is inf in float32
    (1e38, "the train loss is not finite before the first step"),  # finite, but the products overflow float32
])
def test_data_that_overflows_is_named_as_the_cause_not_the_learning_rate(scale, message):
    from pipeline.core.errors import PipelineError

    splits = moons()
    splits.X["train"] = splits.X["train"] * scale
    trainer = TrainerConfig(optimizer="sgd", lr=0.1, max_steps=10, eval_every=5, batch_size=None)
    with pytest.raises(PipelineError, match=message) as raised:
        fit([Member(0, RecipeConfig())], SMALL, trainer, splits)
    assert "lr" not in str(raised.value) and "rescale" in str(raised.value)
