"""The decision boundary as it forms: every network's class probabilities over
the plane at a few steps of training, as small images for MLflow's step
slider. Colour-mapped arrays rather than matplotlib figures: a figure costs
a tenth of a second, an array a millisecond, and there is one per network
and step."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytorch_lightning as pl
import torch

from pipeline.data.splits import Splits

RESOLUTION = 120  # pixels a side: enough to see the boundary move, small enough to log fast
PALE = 0.35  # how much of the class colour shows under the points


def snapshot_steps(max_steps: int, eval_every: int, count: int) -> list[int]:
    """count steps from 0 to max_steps, on the evaluation grid (the engine
    can only be looked at between chunks of eval_every steps)."""
    if count <= 0:
        return []
    evaluations = sorted({*range(0, max_steps, eval_every), max_steps})
    picks = np.linspace(0, len(evaluations) - 1, min(count, len(evaluations))).round().astype(int)
    return [evaluations[i] for i in dict.fromkeys(picks)]


def square_plane(splits: Splits, margin: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A square grid over the training points with a margin: equal aspect, so circles stay round."""
    X = splits.X["train"]
    centre, half = (X.max(0) + X.min(0)) / 2, (X.max(0) - X.min(0)).max() / 2 * (1 + margin)
    axis = [np.linspace(c - half, c + half, RESOLUTION) for c in centre]
    return np.meshgrid(*axis)


class BoundarySnapshots(pl.Callback):
    """Records net.predict_proba over a grid at the given steps, in evaluation
    mode (no dropout mask drawn, no batch-norm statistic updated), so the
    training itself is untouched."""

    def __init__(self, grid: tuple[np.ndarray, np.ndarray], steps: list[int]):
        self.grid, self.steps = grid, set(steps)
        self.probabilities: dict[int, np.ndarray] = {}  # step -> (K, rows, columns, classes)

    def on_train_start(self, trainer, module) -> None:
        self._take(module)

    def on_validation_end(self, trainer, module) -> None:
        self._take(module)

    @torch.no_grad()
    def _take(self, module) -> None:
        if module.steps not in self.steps or module.steps in self.probabilities:
            return
        net, (xx, yy) = module.net, self.grid
        was_training = net.training
        net.eval()
        points = torch.as_tensor(np.c_[xx.ravel(), yy.ravel()], dtype=net.dtype)
        self.probabilities[module.steps] = net.predict_proba(points).numpy().reshape(net.k, *xx.shape, -1)
        net.train(was_training)


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
