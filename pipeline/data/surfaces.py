"""Artificial loss surfaces of two weights, the landscapes stage's problems
as the generators are the other stages': a quadratic bowl, Himmelblau's
function (four minima at 0) and Rastrigin's (the global minimum at 0 among
many local ones). Each works on numpy arrays and torch tensors alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

BOWL_CENTRE = (2.0, 1.0)
HIMMELBLAU_MINIMA = ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))


def bowl(x, y):
    return ((x - BOWL_CENTRE[0]) ** 2 + (y - BOWL_CENTRE[1]) ** 2) / 2


def himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


def rastrigin(x, y):
    cos = torch.cos if isinstance(x, torch.Tensor) else np.cos
    return 20 + x ** 2 - 10 * cos(2 * np.pi * x) + y ** 2 - 10 * cos(2 * np.pi * y)


@dataclass(frozen=True)
class Surface:
    function: Callable
    reach: float  # the plane shown: [-reach, reach] on both axes
    title: str


SURFACES = {  # works on numpy arrays and torch tensors alike
    "bowl": Surface(bowl, 3.0, "bowl |w - (2, 1)|² / 2"),
    "himmelblau": Surface(himmelblau, 5.0, "Himmelblau"),
    "rastrigin": Surface(rastrigin, 3.0, "Rastrigin"),
}
