"""The math of the regularizers: the L2 penalty and its gradient, inverted
dropout, early stopping with best-weight restoration, and divergence."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning.loggers import CSVLogger
from sklearn.datasets import make_moons
from torch import nn

from pipeline.config import (
    DropoutConfig,
    EarlyStoppingConfig,
    L2Config,
    ModelConfig,
    RecipeConfig,
    RunConfig,
    TrainerConfig,
    load_params,
)
from pipeline.datasets import Splits
from pipeline.errors import PipelineError
from pipeline.model import MLP, InvertedDropout, as_tensors
from pipeline.regularization import L2, build
from pipeline.training import Classifier, DivergenceError, fit

ROOT = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(hidden=[4, 3], activation="relu", init="he")

# Lightning's own deprecation noise (pipeline.training filters it, but pytest resets filters per test)
pytestmark = pytest.mark.filterwarnings("ignore:.*treespec, LeafSpec")


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these nets are tiny, threads only contend under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_net(recipe: RecipeConfig = RecipeConfig(), seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(n_features=3, n_classes=2, model=SMALL, recipe=recipe)


def data(m: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 3, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def randomize_biases(net: MLP) -> None:
    # biases start at zero, which would hide a wrong bias gradient
    with torch.no_grad():
        for layer in net.linear_layers():
            layer.bias.copy_(torch.linspace(-1.0, 1.0, layer.bias.numel()))


def grads(loss: torch.Tensor, net: MLP) -> dict[str, torch.Tensor]:
    names, params = zip(*net.named_parameters())
    found = torch.autograd.grad(loss, params, allow_unused=True)
    return {n: torch.zeros_like(p) if g is None else g for n, p, g in zip(names, params, found)}


# --- L2 ---------------------------------------------------------------------


def test_l2_penalty_value_excludes_biases():
    net = small_net()
    randomize_biases(net)
    lam, m = 0.7, 40
    penalty = L2(L2Config(strength=lam)).penalty(net, m)
    expected = lam / (2 * m) * sum(float((layer.weight.detach().double() ** 2).sum()) for layer in net.linear_layers())
    assert penalty.item() == pytest.approx(expected, abs=1e-6)
    assert len(net.linear_layers()) == 3


def test_l2_penalty_gradient_is_lambda_over_m_times_weights():
    net = small_net()
    randomize_biases(net)
    lam, m = 0.7, 40
    gradient = grads(L2(L2Config(strength=lam)).penalty(net, m), net)
    for name, param in net.named_parameters():
        if name.endswith("weight"):
            torch.testing.assert_close(gradient[name], lam / m * param.detach(), rtol=0, atol=1e-6)
        else:
            assert torch.count_nonzero(gradient[name]) == 0, name


def test_l2_with_regularize_bias_penalizes_biases_too():
    net = small_net()
    randomize_biases(net)
    lam, m = 2.0, 25
    penalty = L2(L2Config(strength=lam, regularize_bias=True)).penalty(net, m)
    squares = sum(float((p.detach().double() ** 2).sum()) for p in net.parameters())
    assert penalty.item() == pytest.approx(lam / (2 * m) * squares, abs=1e-6)
    gradient = grads(penalty, net)
    for name, param in net.named_parameters():
        torch.testing.assert_close(gradient[name], lam / m * param.detach(), rtol=0, atol=1e-6)
    assert any(name.endswith("bias") and torch.count_nonzero(g) > 0 for name, g in gradient.items())


def test_objective_gradient_is_data_gradient_plus_weight_decay():
    net = small_net()
    randomize_biases(net)
    x, y = data(m=40)
    lam = 0.9
    trainer = TrainerConfig(optimizer="sgd", lr=0.1, max_steps=1, eval_every=1)
    module = Classifier(net, build(RecipeConfig(l2=L2Config(strength=lam)), 0), trainer,
                        train=(x, y), dev=(x[:0], y[:0]), seed=0)
    assert module.n_train == 40
    full = grads(module.objective(x, y), net)
    data_only = grads(net.loss(net(x), y), net)
    assert any(torch.count_nonzero(g) > 0 for g in data_only.values())
    for name, param in net.named_parameters():
        decay = lam / 40 * param.detach() if name.endswith("weight") else torch.zeros_like(param)
        torch.testing.assert_close(full[name], data_only[name] + decay, rtol=0, atol=1e-6)
    # the objective's value is the data loss plus the penalty
    penalty = lam / 80 * sum(float((layer.weight.detach() ** 2).sum()) for layer in net.linear_layers())
    assert module.objective(x, y).item() == pytest.approx(net.loss(net(x), y).item() + penalty, abs=1e-6)


def test_no_regularizer_for_baseline_and_dropout():
    assert build(RecipeConfig(), 0) == []
    assert build(RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.5])), 0) == []
    assert [type(r).__name__ for r in build(RecipeConfig(
        l2=L2Config(strength=1.0), early_stopping=EarlyStoppingConfig(patience=3)), 0)] == ["L2", "EarlyStopping"]


# --- dropout ------------------------------------------------------------------

DROPOUT = RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.8]))


def test_dropout_layers_follow_hidden_activations():
    net = small_net(DROPOUT)
    assert [type(layer) for layer in net] == [
        nn.Linear, nn.ReLU, InvertedDropout, nn.Linear, nn.ReLU, InvertedDropout, nn.Linear
    ]
    assert net[2].p == pytest.approx(0.5)
    assert net[5].p == pytest.approx(0.2)
    # a keep probability of 1 adds no dropout layer
    partial = MLP(3, 2, SMALL, RecipeConfig(dropout=DropoutConfig(keep_prob=[1.0, 0.5])))
    assert [type(layer) for layer in partial] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, InvertedDropout, nn.Linear]


@pytest.mark.parametrize("index, keep", [(2, 0.5), (5, 0.8)])
def test_inverted_dropout_drops_one_minus_keep_and_preserves_the_mean(index, keep):
    net = small_net(DROPOUT).train()
    torch.manual_seed(123)
    out = net[index](torch.ones(100_000))
    zero_share = (out == 0).double().mean().item()
    assert zero_share == pytest.approx(1 - keep, abs=0.02)
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / keep))  # inverted scaling
    assert out.mean().item() == pytest.approx(1.0, rel=0.01)


def test_dropout_is_identity_in_eval_mode():
    net = small_net(DROPOUT)
    plain = small_net(RecipeConfig(), seed=99)
    with torch.no_grad():
        for source, target in zip(net.linear_layers(), plain.linear_layers()):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    x, _ = data(m=200)
    net.eval()
    plain.eval()
    with torch.no_grad():
        first, second, reference = net(x), net(x), plain(x)
        assert torch.equal(first, second)
        assert torch.equal(first, reference)
        net.train()
        torch.manual_seed(5)
        assert not torch.equal(net(x), reference)  # dropout is active in train mode


# --- early stopping and divergence ---------------------------------------------


def overfitting_splits(n_train: int = 30, n_dev: int = 200) -> Splits:
    """Few noisy training points and a wide net: dev loss falls, then rises."""
    X, y = make_moons(n_train + n_dev, noise=0.4, random_state=1)
    return Splits(
        X={"train": X[:n_train], "dev": X[n_train:], "test": X[:0]},
        y={"train": y[:n_train], "dev": y[n_train:], "test": y[:0]},
        classes=np.array([0, 1]),
    )


def run_config(recipe: RecipeConfig, name: str, **trainer) -> RunConfig:
    params = load_params(ROOT / "params.yaml")
    settings = dict(optimizer="adam", lr=0.01, max_steps=2000, eval_every=10) | trainer
    return RunConfig(
        seed=0,
        dataset_name="moons",
        dataset=params.datasets["moons"],
        model=ModelConfig(hidden=[64, 64], activation="relu", init="he"),
        trainer=TrainerConfig(**settings),
        recipe=name,
        regularization=recipe,
    )


def dev_loss(net: MLP, splits: Splits) -> float:
    x, y = as_tensors(splits.X["dev"], splits.y["dev"])
    with torch.no_grad():
        return net.loss(net.eval()(x), y).item()


def test_early_stopping_stops_and_restores_the_best_weights(tmp_path):
    splits = overfitting_splits()
    patience, eval_every = 2, 10
    run = run_config(RecipeConfig(early_stopping=EarlyStoppingConfig(patience=patience)), "early_stopping",
                     eval_every=eval_every)
    result = fit(run, splits, CSVLogger(tmp_path, name="es", version=0))

    assert result.steps < 2000
    best, stopped = result.key_figures["best_step"], result.key_figures["stopped_step"]
    assert 0 < best < stopped == result.steps
    assert stopped == best + patience * eval_every  # `patience` evaluations without improvement

    with open(tmp_path / "es/version_0/metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("dev_loss")]
    seen = {int(row["step"]): float(row["dev_loss"]) for row in rows}
    assert sorted(seen) == list(range(0, stopped + 1, eval_every))  # step 0 is logged at train start
    evaluated = {step: loss for step, loss in seen.items() if step > 0}  # what early stopping compared
    assert min(evaluated, key=evaluated.get) == best
    assert seen[stopped] > seen[best]  # the last weights are worse: restoring matters

    restored = dev_loss(result.net, splits)
    assert restored == pytest.approx(evaluated[best], rel=1e-6)
    assert restored == pytest.approx(min(evaluated.values()), rel=1e-6)

    # training the same network for best_step steps gives the returned weights, bit for bit
    replay = fit(run_config(RecipeConfig(), "baseline", max_steps=best, eval_every=eval_every), splits)
    assert replay.steps == best
    for (name, theirs), ours in zip(replay.net.state_dict().items(), result.net.state_dict().values()):
        assert torch.equal(theirs, ours), name


def test_l2_training_shrinks_the_weights():
    splits = overfitting_splits()

    def squared_weights(recipe: RecipeConfig, name: str) -> float:
        net = fit(run_config(recipe, name, max_steps=200, eval_every=100), splits).net
        return sum(float((layer.weight.detach() ** 2).sum()) for layer in net.linear_layers())

    baseline = squared_weights(RecipeConfig(), "baseline")
    penalized = squared_weights(RecipeConfig(l2=L2Config(strength=5.0)), "l2")
    assert penalized < 0.8 * baseline


def test_diverging_run_raises_divergence_error():
    run = run_config(RecipeConfig(), "baseline", optimizer="sgd", lr=1e6, max_steps=2000, eval_every=10)
    with pytest.raises(DivergenceError) as caught:
        fit(run, overfitting_splits())
    assert isinstance(caught.value, PipelineError)  # so the CLI prints one line, exit 1
    message = str(caught.value)
    assert message.startswith("training diverged: the train loss is ")
    assert "lower trainer.lr or the regularization strengths" in message


def test_divergence_on_the_last_step_is_reported():
    run = run_config(RecipeConfig(), "baseline", optimizer="sgd", lr=1e20, max_steps=1, eval_every=1)
    splits = overfitting_splits()
    with pytest.raises(DivergenceError):
        fit(run, splits)
