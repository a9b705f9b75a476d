"""Steps per second of the project's trainer against a plain PyTorch loop and a
numpy loop, on the football-sized problem, in one process.

    python benchmarks/trainer_speed.py [--steps N]

Network [2, 20, 3, 1], ReLU, sigmoid output, 211 training points, full-batch
gradient descent with learning rate 0.3. The last line printed is one JSON
object with trainer_steps_per_s, torch_steps_per_s and numpy_steps_per_s.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from pipeline.config import RecipeConfig, RunConfig
from pipeline.datasets import Splits
from pipeline.params import compose
from pipeline.training import fit

HIDDEN = [20, 3]
N_TRAIN = 211
LR = 0.3


def football_sized_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.8, 0.6, size=(N_TRAIN, 2))
    y = (X[:, 0] * 0.8 + np.sin(4 * X[:, 1]) * 0.3 > 0).astype(np.int64)
    return X, y


def project_trainer(X, y, steps: int) -> float:
    defaults = compose("train")
    run = RunConfig.model_validate(
        {
            **defaults,
            "dataset_name": "benchmark",
            "recipe": "baseline",
            "regularization": RecipeConfig(),
            "model": {"hidden": HIDDEN, "activation": "relu", "init": "randn_sqrt_fan_in"},
            "trainer": {**defaults["trainer"], "optimizer": "sgd", "lr": LR, "max_steps": steps, "batch_size": None},
        }
    )
    empty = X[:0]
    splits = Splits(X={"train": X, "dev": empty, "test": empty}, y={"train": y, "dev": y[:0], "test": y[:0]},
                    classes=np.array([0, 1]))
    start = time.perf_counter()
    result = fit(run, splits)
    elapsed = time.perf_counter() - start
    assert result.steps == steps
    return steps / elapsed


def plain_torch(X, y, steps: int) -> float:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 20), nn.ReLU(), nn.Linear(20, 3), nn.ReLU(), nn.Linear(3, 1))
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
    parser.add_argument("--steps", type=int, default=5000)
    steps = parser.parse_args().steps
    X, y = football_sized_data()
    plain_torch(X, y, 200)  # warm up torch's kernels before anything is timed
    results = {
        "trainer_steps_per_s": project_trainer(X, y, steps),
        "torch_steps_per_s": plain_torch(X, y, steps),
        "numpy_steps_per_s": plain_numpy(X, y, steps),
    }
    torch_rate = results["torch_steps_per_s"]
    for name, rate in results.items():
        print(f"{name.removesuffix('_steps_per_s'):>8}: {rate:9.0f} steps/s  ({rate / torch_rate:.2f}x plain torch)")
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
