"""The decision boundary during training: each image is of the network at its
step, looking does not touch the training, and the images show the boundary
where the probabilities cross."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_moons

from pipeline.analysis.boundary_snapshots import boundary_image, grid_probabilities, square_plane
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig
from pipeline.usecases.training import train, weight_steps


def moons() -> Splits:
    X, y = make_moons(90, noise=0.3, random_state=2)
    return Splits(X={"train": X[:60], "dev": X[60:], "test": X[:0]}, y={"train": y[:60], "dev": y[60:], "test": y[:0]},
                  classes=np.array([0, 1]))


def test_each_image_is_the_boundary_of_the_network_at_that_step():
    """The images are drawn after training from the recorded states: the one at
    a step is the boundary of a training that ends there, bit for bit, and
    drawing them leaves the training untouched. Dropout draws masks and batch
    norm keeps running statistics, so a wrong state (or mode) shows."""
    splits = moons()
    recipe = RecipeConfig.model_validate({"dropout": {"keep_prob": [0.7, 0.7]}, "batch_norm": {}})
    stopping = RecipeConfig.model_validate({"early_stopping": {"patience": 1}})  # its networks end restored to best
    model = ModelConfig(hidden=[8, 4], activation="relu", init="he")
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=60, eval_every=10, batch_size=16)
    stopped = train([Member(seed, stopping) for seed in (0, 1, 2)], model, trainer, splits)
    for images, last in zip(stopped.snapshots, stopped.result.steps):  # none after a network stopped
        assert sorted(images) == [step for step in weight_steps(60) if step <= last]
    assert min(stopped.result.steps) < 60
    members = [Member(seed, recipe) for seed in (0, 1, 2)]
    drawn = train(members, model, trainer, splits)
    plain = fit(members, model, trainer, splits)
    for a, b in zip(plain.net.state_dict().values(), drawn.trained.net.state_dict().values()):
        assert torch.equal(a, b)
    assert plain.curves == drawn.result.curves
    grid = square_plane(splits)
    assert all(sorted(images) == weight_steps(60) for images in drawn.snapshots)
    for step in (3, 30, 60):
        ended = fit(members, model, trainer.model_copy(update={"max_steps": step}), splits).net
        for k, probabilities in enumerate(grid_probabilities(ended, grid)):
            assert np.array_equal(drawn.snapshots[k][step], boundary_image(probabilities, grid, splits)), (step, k)
    first = drawn.snapshots[0]
    assert first[0].shape == (120, 120, 3) and not np.array_equal(first[0], first[max(first)])  # it learned


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
