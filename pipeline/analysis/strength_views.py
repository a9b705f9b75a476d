"""A path's networks as the report page's strength slider shows them: per
strength, the first seed's weights (for its histogram) and, for points in
the plane, its decision boundary as an image array (a millisecond each, no
matplotlib). The path stage writes them, the report stage reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.analysis.boundary_snapshots import boundary_image, grid_probabilities, square_plane
from pipeline.core.atomic import write_npz
from pipeline.core.errors import PipelineError
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained


@dataclass
class StrengthViews:
    strengths: np.ndarray  # (S,)
    weights: np.ndarray  # (S, every weight of the network, biases aside)
    images: np.ndarray | None  # (S, rows, columns, 3) uint8; None unless the points are in the plane


@torch.no_grad()
def strength_views(trained: Trained, strengths: list[float], networks: list[int], splits: Splits) -> StrengthViews:
    """networks: per strength, the index of the network to show (its first seed's)."""
    net = trained.subset(networks)
    weights = torch.cat([layer.weight.reshape(net.k, -1) for layer in net.linear_layers()], 1).numpy()
    images = None
    if splits.n_features == 2:
        grid = square_plane(splits)
        images = np.stack([boundary_image(p, grid, splits) for p in grid_probabilities(net, grid)])
    return StrengthViews(np.asarray(strengths, dtype=float), weights, images)


def save_views(target: Path, views: StrengthViews) -> None:
    images = {} if views.images is None else {"images": views.images}
    write_npz(target, strengths=views.strengths, weights=views.weights, **images)


def load_views(source: Path) -> StrengthViews:
    try:
        with np.load(source) as arrays:
            return StrengthViews(arrays["strengths"], arrays["weights"],
                                 arrays["images"] if "images" in arrays.files else None)
    except (OSError, ValueError, KeyError):
        raise PipelineError(f"{source} is missing or corrupt: run the path stage (dvc repro)") from None
