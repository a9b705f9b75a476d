"""The decision boundary during training: looking must not touch the training,
and the images show the boundary where the probabilities cross."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_moons

from pipeline.analysis.boundary_snapshots import BoundarySnapshots, boundary_image, snapshot_steps, square_plane
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig


def moons() -> Splits:
    X, y = make_moons(90, noise=0.3, random_state=2)
    return Splits(X={"train": X[:60], "dev": X[60:], "test": X[:0]}, y={"train": y[:60], "dev": y[60:], "test": y[:0]},
                  classes=np.array([0, 1]))


def test_snapshot_steps_fall_on_evaluations_from_first_to_last():
    assert snapshot_steps(1000, 50, 6) == [0, 200, 400, 600, 800, 1000]
    assert snapshot_steps(60, 20, 6) == [0, 20, 40, 60]
    assert snapshot_steps(70, 20, 3) == [0, 40, 70]
    assert snapshot_steps(1000, 50, 0) == []


def test_looking_at_the_boundary_leaves_training_bit_for_bit_unchanged():
    """Dropout draws masks and batch norm updates statistics in training mode:
    the snapshots are taken in evaluation mode, so neither moves."""
    splits = moons()
    recipe = RecipeConfig.model_validate({"dropout": {"keep_prob": [0.7, 0.7]}, "batch_norm": {},
                                          "early_stopping": {"patience": 1}})
    model = ModelConfig(hidden=[8, 4], activation="relu", init="he")
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=60, eval_every=10, batch_size=16)
    members = [Member(seed, recipe) for seed in (0, 1, 2)]
    plain = fit(members, model, trainer, splits)
    snapshots = BoundarySnapshots(square_plane(splits), snapshot_steps(60, 10, 4))
    watched = fit(members, model, trainer, splits, callbacks=[snapshots])
    for a, b in zip(plain.net.state_dict().values(), watched.net.state_dict().values()):
        assert torch.equal(a, b)
    assert plain.curves == watched.curves
    last = max(watched.steps)  # training ends when every network has stopped
    assert sorted(snapshots.probabilities) == [step for step in (0, 20, 40, 60) if step <= last]
    assert snapshots.probabilities[0].shape == (3, 120, 120, 2)
    assert not np.array_equal(snapshots.probabilities[0], snapshots.probabilities[20])  # it learned


def test_boundary_image_marks_the_crossing_and_the_training_points():
    splits = Splits(X={"train": np.array([[0.0, 0.0], [1.0, 1.0]]), "dev": np.zeros((0, 2)), "test": np.zeros((0, 2))},
                    y={"train": np.array([0, 1]), "dev": np.zeros(0, int), "test": np.zeros(0, int)},
                    classes=np.array([0, 1]))
    xx, yy = np.meshgrid(np.linspace(0, 1, 11), np.linspace(0, 1, 11))
    p1 = (xx > 0.5).astype(float) * 0.8 + 0.1  # class 1 to the right of x = 0.5
    image = boundary_image(np.stack([1 - p1, p1], -1), (xx, yy), splits)
    assert image.shape == (11, 11, 3) and image.dtype == np.uint8
    assert (image[:, 6] == 0).all() and (image[1:-1, 4] > 100).all()  # the boundary column, in black
    assert image[-1, 0].max() < 200 and image[0, -1].max() < 200  # the points: bottom left and top right
    assert (image[5, 2] != image[5, 8]).any()  # each side in its class's colour
