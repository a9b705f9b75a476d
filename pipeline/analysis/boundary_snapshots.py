"""The decision boundary as it forms: every network's class probabilities over
the plane at the steps its state is recorded (0, 1, 3, 10, ...), as small
images for MLflow's step slider and the report page's. Colour-mapped arrays
rather than matplotlib figures: a figure costs a tenth of a second, an array
a millisecond, and there is one per network and step."""

from __future__ import annotations

import matplotlib
import numpy as np
import torch

from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.network import StackedNetwork

RESOLUTION = 120  # pixels a side: enough to see the boundary move, small enough to log fast
PALE = 0.35  # how much of the class colour shows under the points
# Grid points per forward pass: a few networks' (rows, units) activations stay in the CPU's cache, ten times
# faster than the whole grid's 14 400 rows at once.
ROWS = 1024


def square_plane(splits: Splits, margin: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A square grid over the training points with a margin: equal aspect, so circles stay round."""
    X = splits.X["train"]
    centre, half = (X.max(0) + X.min(0)) / 2, (X.max(0) - X.min(0)).max() / 2 * (1 + margin)
    axis = [np.linspace(c - half, c + half, RESOLUTION) for c in centre]
    return np.meshgrid(*axis)


@torch.no_grad()
def boundaries_during_training(trained: Trained, states: dict[int, dict[str, torch.Tensor]], stopped: list[int],
                               splits: Splits) -> list[dict[int, np.ndarray]]:
    """Per network: step -> its boundary image then, drawn after training from
    the states the engine recorded (a network rebuilt per step, one batched
    prediction over the grid), so looking never touches the training. A
    network stopped early has no image after the step it stopped at."""
    grid = square_plane(splits)
    images: list[dict[int, np.ndarray]] = [{} for _ in stopped]
    for step, state in states.items():
        probabilities = grid_probabilities(trained.with_state(state), grid)
        for k, last in enumerate(stopped):
            if step <= last:
                images[k][step] = boundary_image(probabilities[k], grid, splits)
    return images


@torch.no_grad()
def grid_probabilities(net: StackedNetwork, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(K, rows, columns, classes): every network's class probabilities over the grid; net in evaluation mode."""
    points = torch.as_tensor(np.c_[grid[0].ravel(), grid[1].ravel()], dtype=net.dtype)
    probabilities = torch.cat([net.predict_proba(points[start:start + ROWS]) for start in range(0, len(points), ROWS)],
                              dim=1)
    return probabilities.numpy().reshape(net.k, *grid[0].shape, -1)


def boundary_image(proba: np.ndarray, grid: tuple[np.ndarray, np.ndarray], splits: Splits) -> np.ndarray:
    """(rows, columns, 3) uint8: the predicted class's colour, paler where the
    network is unsure, the boundary in black and the training points as dark
    dots of their class's colour; row 0 at the top, as images go."""
    colours = matplotlib.colormaps["tab10"](np.arange(10))[:, :3]
    predicted = proba.argmax(-1)
    confidence = (proba.max(-1) - 1 / proba.shape[-1]) / (1 - 1 / proba.shape[-1])  # 0 unsure, 1 certain
    image = 1 - PALE * confidence[..., None] * (1 - colours[predicted % 10])
    edge = np.zeros(predicted.shape, bool)
    edge[1:] |= predicted[1:] != predicted[:-1]
    edge[:, 1:] |= predicted[:, 1:] != predicted[:, :-1]
    image[edge] = 0
    xx, yy = grid
    X, y = splits.X["train"], splits.y["train"]
    column = np.round((X[:, 0] - xx[0, 0]) / (xx[0, -1] - xx[0, 0]) * (xx.shape[1] - 1)).astype(int)
    row = np.round((X[:, 1] - yy[0, 0]) / (yy[-1, 0] - yy[0, 0]) * (yy.shape[0] - 1)).astype(int)
    inside = (column >= 0) & (column < xx.shape[1]) & (row >= 0) & (row < yy.shape[0])
    image[row[inside], column[inside]] = 0.6 * colours[y[inside] % 10]
    return (image[::-1] * 255).round().astype(np.uint8)
