"""Penalty landscapes: the artificial loss surfaces of pipeline.data.surfaces
with an L1 or L2 term added, to see what the term does to the minimum and to
the path an optimizer takes. No data and no network: f(w) + penalty(w) over
the plane.

Penalties as the lab writes them, without the 1/m of a data set:
L2 strength/2 * |w|^2 (its gradient strength * w), L1 strength * |w|_1.
On the bowl f(w) = |w - c|^2 / 2 the minimum is known in closed form:
c / (1 + strength) under L2 (every coordinate shrunk by one factor), and the
soft threshold sign(c) * max(|c| - strength, 0) under L1 (a coordinate at
exactly 0 once the strength passes |c_i|)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pipeline.core.errors import PipelineError
from pipeline.data.surfaces import BOWL_CENTRE, SURFACES

def penalty(kind: str, strength: float, x, y):
    if kind == "l2":
        return strength / 2 * (x ** 2 + y ** 2)
    return strength * (abs(x) + abs(y))


def objective(name: str, kind: str, strength: float) -> Callable:
    function = SURFACES[name].function
    return lambda x, y: function(x, y) + penalty(kind, strength, x, y)


def closed_form_bowl_minimum(kind: str, strength: float) -> np.ndarray:
    c = np.array(BOWL_CENTRE)
    if kind == "l2":
        return c / (1 + strength)
    return np.sign(c) * np.maximum(np.abs(c) - strength, 0)


def grid(reach: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-reach, reach, points)
    return np.meshgrid(axis, axis)


def global_minimum(name: str, kind: str, strength: float, points: int = 201) -> np.ndarray:
    """The lowest point of the penalized surface in the plane shown: the
    grid's lowest point, polished by Nelder-Mead (the L1 term has no gradient at 0)."""
    from scipy.optimize import minimize  # a second's import, for this stage alone

    f = objective(name, kind, strength)
    xx, yy = grid(SURFACES[name].reach, points)
    values = f(xx, yy)
    row, column = np.unravel_index(values.argmin(), values.shape)
    result = minimize(lambda w: f(w[0], w[1]), [xx[row, column], yy[row, column]], method="Nelder-Mead",
                      options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 2000})
    return result.x


def minimum_track(name: str, kind: str, strengths: list[float]) -> np.ndarray:
    """(len(strengths), 2): where the global minimum sits at each strength."""
    return np.array([global_minimum(name, kind, s) for s in strengths])


def surfaces_drawn(directory: Path) -> list[str]:
    """The surfaces the landscapes stage drew into directory (<surface>.png each), in its order."""
    try:
        return list(json.loads((directory / "landscapes.json").read_text()))
    except (OSError, ValueError):
        raise PipelineError(f"{directory / 'landscapes.json'} is missing or corrupt: run dvc repro") from None


def trajectories(name: str, settings: list[tuple[str, float]], starts: list[tuple[float, float]], optimizer: str,
                 lr: float, steps: int) -> np.ndarray:
    """(len(settings), len(starts), steps + 1, 2): torch's SGD or Adam on the
    surface under each (penalty, strength) setting from every start, all at
    once (the points are independent: one parameter tensor, elementwise updates)."""
    def per_point(kind: str) -> torch.Tensor:
        values = [strength if penalty_kind == kind else 0.0 for penalty_kind, strength in settings]
        return torch.tensor(values, dtype=torch.float64).repeat_interleave(len(starts))

    l2, l1 = per_point("l2"), per_point("l1")
    points = torch.tensor(starts, dtype=torch.float64).repeat(len(settings), 1).requires_grad_()
    step = {"gd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]([points], lr=lr)
    function = SURFACES[name].function
    path = [points.detach().clone()]
    for _ in range(steps):
        step.zero_grad()
        x, y = points[:, 0], points[:, 1]
        (function(x, y) + penalty("l2", l2, x, y) + penalty("l1", l1, x, y)).sum().backward()
        step.step()
        path.append(points.detach().clone())
    return torch.stack(path, 1).reshape(len(settings), len(starts), steps + 1, 2).numpy()
