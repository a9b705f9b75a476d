"""Train a batch of networks (seeds, recipes, strengths) at once, recording
their weights at log-spaced steps and, for points in the plane, the
decision boundary at those steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.analysis.boundary_snapshots import boundaries_during_training
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.core.atomic import atomic_dir, write_npz
from pipeline.core.errors import PipelineError
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import FitResult, Member, fit


def weight_steps(max_steps: int) -> list[int]:
    """When the weights are recorded: 0, 1, 3, 10, 30, 100, ... below max_steps,
    and max_steps. Log-spaced, since weights move most at the start (1 000
    steps: 8 records)."""
    marks = [(1, 3)[e % 2] * 10 ** (e // 2) for e in range(2 * len(str(max_steps)))]
    return [0, *(step for step in marks if step < max_steps), max_steps]


@dataclass
class Training:
    trained: Trained
    result: FitResult
    snapshots: list[dict[int, np.ndarray]]  # per network: step -> boundary image (rows, columns, 3), uint8
    weights: dict[int, list[np.ndarray]]  # step -> every weight matrix, (K, in, out): see weight_steps


def train(members: list[Member], model: ModelConfig, trainer: TrainerConfig, splits: Splits,
          progress: str | None = None, boundaries: bool = True) -> Training:
    """fit() the members at once; for points in the plane and boundaries, each
    network's decision boundary at every weight step. progress: see fit()."""
    result = fit(members, model, trainer, splits, progress=progress, weight_steps=weight_steps(trainer.max_steps))
    trained = Trained(result.net, result.batch, model, [m.recipe for m in members])
    images = [{} for _ in members]
    if splits.n_features == 2 and boundaries:
        images = boundaries_during_training(trained, result.states, result.steps, splits)
    return Training(trained, result, images,
                    {step: [w.numpy() for w in matrices] for step, matrices in result.weights.items()})


def snapshot_name(seed: int, step: int) -> str:
    return f"seed_{seed}_step_{step}.png"


def save_snapshots(directory: Path, seeds: list[int], snapshots: list[dict[int, np.ndarray]]) -> None:
    """Every network's boundary images as PNG files (seed_<seed>_step_<step>.png), written atomically."""
    with atomic_dir(directory) as tmp:
        for seed, images in zip(seeds, snapshots):
            for step, image in images.items():
                Image.fromarray(image).save(tmp / snapshot_name(seed, step))


def load_snapshots(directory: Path, seed: int) -> dict[int, Path]:
    """One network's boundary images: step -> file."""
    prefix = f"seed_{seed}_step_"
    files = {int(path.stem.removeprefix(prefix)): path for path in directory.glob(f"{prefix}*.png")}
    return dict(sorted(files.items()))


def save_weights(target: Path, weights: dict[int, list[np.ndarray]]) -> None:
    """The recorded weights as one npz file: steps (S,) and W1, W2, ... each (S, K, in, out)."""
    steps = sorted(weights)
    write_npz(target, steps=np.array(steps), **{f"W{i + 1}": np.stack([weights[s][i] for s in steps])
                                                   for i in range(len(weights[steps[0]]))})


def load_weights(source: Path) -> dict[int, list[np.ndarray]]:
    """step -> every weight matrix (K, in, out), as save_weights wrote them."""
    try:
        with np.load(source) as arrays:
            steps = arrays["steps"].tolist()
            matrices = [arrays[f"W{i}"] for i in range(1, len(arrays.files))]
    except (OSError, ValueError, KeyError):
        raise PipelineError(f"{source} is missing or corrupt: run the train stage (dvc repro)") from None
    return {step: [m[s] for m in matrices] for s, step in enumerate(steps)}
