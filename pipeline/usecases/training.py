"""Train a batch of networks (seeds, recipes, strengths) at once, recording,
for points in the plane, the decision boundary as it forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.analysis.boundary_snapshots import BoundarySnapshots, boundary_image, snapshot_steps, square_plane
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.core.atomic import atomic_dir
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import FitResult, Member, fit

SNAPSHOTS = 5  # decision-boundary images per network during training (2-D data): 0, 250, ..., 1000 by default


@dataclass
class Training:
    trained: Trained
    result: FitResult
    snapshots: list[dict[int, np.ndarray]]  # per network: step -> boundary image (rows, columns, 3), uint8


def train(members: list[Member], model: ModelConfig, trainer: TrainerConfig, splits: Splits,
          progress: str | None = None, snapshots: int = SNAPSHOTS) -> Training:
    """fit() the members at once, with that many boundary snapshots each; progress: see fit()."""
    recorder = None
    if splits.n_features == 2 and snapshots:
        recorder = BoundarySnapshots(square_plane(splits), snapshot_steps(trainer.max_steps, trainer.eval_every,
                                                                          snapshots))
    result = fit(members, model, trainer, splits, callbacks=[recorder] if recorder else [], progress=progress)
    trained = Trained(result.net, result.batch, model, [m.recipe for m in members])
    images = [{} for _ in members]
    for step, probabilities in sorted((recorder.probabilities if recorder else {}).items()):
        for k, stopped in enumerate(result.steps):
            if step <= stopped:  # a stopped network stays as it was
                images[k][step] = boundary_image(probabilities[k], recorder.grid, splits)
    return Training(trained, result, images)


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
