"""Steps per second of the project's training engine against plain loops, on
the football-sized problem, in one process.

    python benchmarks/trainer_speed.py [--steps N] [--models K]

Network [2, 20, 3, 1], ReLU, sigmoid output, 211 training points, full-batch
gradient descent with learning rate 0.3, float32. Measured:

- trainer: the engine (pipeline.engine.fit, Lightning) training one network;
- fused: the same with trainer.fused, its step compiled by torch.compile
  (compiled before timing: each new process pays that once per shape);
- torch: a plain PyTorch loop (nn.Sequential, torch.optim.SGD) training one;
- numpy: the course notebook's numpy loop training one;
- batched: the engine training K networks at once (model-steps per second);
- fused_model: the same with trainer.fused;
- vmap: K networks with torch.func (stack_module_state + vmap +
  functional_call), the alternative to stacked parameters the engine does not use.

Each loop runs --rounds times, the loops taking turns, and its median
counts, so that a moment of load on the machine does not decide a ratio.
The last line printed is one JSON object with trainer_steps_per_s,
fused_steps_per_s, torch_steps_per_s, numpy_steps_per_s,
batched_model_steps_per_s, fused_model_steps_per_s, batched_models and
vmap_model_steps_per_s.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig

HIDDEN = [20, 3]
N_TRAIN = 211
LR = 0.3


def football_sized_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.8, 0.6, size=(N_TRAIN, 2))
    y = (X[:, 0] * 0.8 + np.sin(4 * X[:, 1]) * 0.3 > 0).astype(np.int64)
    return X, y


def engine(X, y, steps: int, models: int, fused: bool = False) -> float:
    """Model-steps per second of the engine training `models` networks at once."""
    empty = X[:0]
    splits = Splits(X={"train": X, "dev": empty, "test": empty}, y={"train": y, "dev": y[:0], "test": y[:0]},
                    classes=np.array([0, 1]))
    model = ModelConfig(hidden=HIDDEN, activation="relu", init="randn_sqrt_fan_in")
    trainer = TrainerConfig(optimizer="sgd", lr=LR, max_steps=steps, eval_every=max(1, steps // 10), fused=fused)
    members = [Member(seed, RecipeConfig()) for seed in range(models)]
    start = time.perf_counter()
    result = fit(members, model, trainer, splits)
    elapsed = time.perf_counter() - start
    assert result.steps == [steps] * models
    return steps * models / elapsed


def network() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 20), nn.ReLU(), nn.Linear(20, 3), nn.ReLU(), nn.Linear(3, 1))


def plain_torch(X, y, steps: int) -> float:
    torch.manual_seed(0)
    net = network()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    x_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.float32).unsqueeze(1)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for _ in range(steps):
        loss = loss_fn(net(x_t), y_t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def vmap_torch(X, y, steps: int, models: int) -> float:
    """Model-steps per second of K copies through torch.func's vmap."""
    from torch.func import functional_call, stack_module_state, vmap

    torch.manual_seed(0)
    params, buffers = stack_module_state([network() for _ in range(models)])
    skeleton = copy.deepcopy(network()).to("meta")
    optimizer = torch.optim.SGD(params.values(), lr=LR)
    x_t = torch.as_tensor(X, dtype=torch.float32)
    y_t = torch.as_tensor(y, dtype=torch.float32).expand(models, len(y))

    def forward(p, b, x):
        return functional_call(skeleton, (p, b), (x,))

    batched = vmap(forward, in_dims=(0, 0, None))
    start = time.perf_counter()
    for _ in range(steps):
        logits = batched(params, buffers, x_t)[..., 0]
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y_t, reduction="none").mean(1).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * models / (time.perf_counter() - start)


def plain_numpy(X, y, steps: int) -> float:
    """The course's implementation: activations laid out units x examples."""
    rng = np.random.default_rng(0)
    sizes = [2, *HIDDEN, 1]
    W = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes, sizes[1:])]
    b = [np.zeros((n, 1)) for n in sizes[1:]]
    A0, Y, m = X.T, y.reshape(1, -1), X.shape[0]
    start = time.perf_counter()
    for _ in range(steps):
        Z1 = W[0] @ A0 + b[0]
        A1 = np.maximum(Z1, 0)
        Z2 = W[1] @ A1 + b[1]
        A2 = np.maximum(Z2, 0)
        Z3 = W[2] @ A2 + b[2]
        A3 = 1 / (1 + np.exp(-Z3))
        dZ3 = (A3 - Y) / m
        dW3, db3 = dZ3 @ A2.T, dZ3.sum(1, keepdims=True)
        dZ2 = (W[2].T @ dZ3) * (Z2 > 0)
        dW2, db2 = dZ2 @ A1.T, dZ2.sum(1, keepdims=True)
        dZ1 = (W[1].T @ dZ2) * (Z1 > 0)
        dW1, db1 = dZ1 @ A0.T, dZ1.sum(1, keepdims=True)
        for param, grad in zip(W + b, [dW1, dW2, dW3, db1, db2, db3]):
            param -= LR * grad
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="steps of each one-network loop")
    parser.add_argument("--models", type=int, default=32, help="K, the networks trained at once")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each loop; the median counts")
    args = parser.parse_args()
    X, y = football_sized_data()
    plain_torch(X, y, 200)  # warm up torch's kernels before anything is timed
    engine(X, y, 20, 1)  # and Lightning's first-use imports
    for k in (1, args.models):  # torch.compile's compilation, once per shape
        engine(X, y, 20, k, fused=True)
    batched_steps = max(1, args.steps // 4)
    loops = {
        "trainer_steps_per_s": lambda: engine(X, y, args.steps, 1),
        "fused_steps_per_s": lambda: engine(X, y, args.steps, 1, fused=True),
        "torch_steps_per_s": lambda: plain_torch(X, y, args.steps),
        "numpy_steps_per_s": lambda: plain_numpy(X, y, args.steps),
        "batched_model_steps_per_s": lambda: engine(X, y, batched_steps, args.models),
        "fused_model_steps_per_s": lambda: engine(X, y, batched_steps, args.models, fused=True),
        "vmap_model_steps_per_s": lambda: vmap_torch(X, y, batched_steps, args.models),
    }
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, loop in loops.items():
            rates[name].append(loop())
    results = {name: statistics.median(values) for name, values in rates.items()}
    torch_rate, numpy_rate = results["torch_steps_per_s"], results["numpy_steps_per_s"]
    for name, rate in results.items():
        label = name.removesuffix("_steps_per_s").replace("_model", f" (K = {args.models}, per model)")
        print(f"{label:>27}: {rate:9.0f} steps/s  {rate / torch_rate:5.2f}x plain torch  "
              f"{rate / numpy_rate:5.2f}x numpy")
    print(json.dumps({**{k: round(v, 1) for k, v in results.items()}, "batched_models": args.models}))


if __name__ == "__main__":
    main()
