"""Data augmentation: random perturbations of training batches only. Gaussian
jitter of every input feature (points or pixels); random shifts and
rotations of images."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, NonNegativeInt

from pipeline.core.errors import PipelineError
from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


class AugmentationConfig(Schema):
    """Random perturbations of training batches only."""

    jitter_std: NonNegativeFloat = 0.0  # Gaussian noise added to every input feature
    max_shift: NonNegativeInt = 0  # images: random shift by up to this many pixels
    max_rotation: NonNegativeFloat = 0.0  # images: random rotation by up to this many degrees


class Augmentation(Technique):
    name = "augmentation"
    Config = AugmentationConfig
    sweeps = "jitter_std"
    statistic = "squared_weight_sum"

    @classmethod
    def key_figure(cls, config, metrics):
        moves = [f"jitter std {config.jitter_std:g}"] if config.jitter_std else []
        moves += [f"shift ≤ {config.max_shift} px"] if config.max_shift else []
        moves += [f"rotation ≤ {config.max_rotation:g}°"] if config.max_rotation else []
        return ", ".join(moves) or "no augmentation configured"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        moves_images = any(c.max_shift or c.max_rotation for c in configs)
        if moves_images and batch.image_shape is None:
            raise PipelineError(
                "augmentation.max_shift and max_rotation need an image data set (digits, mnist5k, mnist); "
                "use augmentation.jitter_std for points"
            )
        self.std = batch.per_model([c.jitter_std for c in configs]).view(-1, 1, 1)
        self.jitter_streams = batch.streams("augmentation jitter") if self.std.any() else None
        self.move_streams = batch.streams("augmentation moves") if moves_images else None
        radians = [math.radians(c.max_rotation) for c in configs]
        self.max_rotation = torch.tensor(radians, dtype=torch.float64, device=batch.device).view(-1, 1)
        self.max_shift = torch.tensor([c.max_shift for c in configs], dtype=torch.float64,
                                      device=batch.device).view(-1, 1, 1)

    def augment(self, x):
        if self.jitter_streams is not None:
            k, m, features = x.shape
            x = x + self.std * self.jitter_streams.draw(lambda g: torch.randn(m, features, generator=g, dtype=x.dtype))
        if self.move_streams is not None:
            x = self._shift_and_rotate(x)
        return x

    def _shift_and_rotate(self, x: torch.Tensor) -> torch.Tensor:
        k, m, _ = x.shape
        rows, columns = self.batch.image_shape
        uniforms = self.move_streams.draw(lambda g: torch.rand(m, 3, generator=g, dtype=torch.float64))
        # each network scales the shared uniforms by its own bounds: angle in
        # [-max_rotation, max_rotation], shift a whole number in [-max_shift, max_shift]
        angle = ((uniforms[..., 0] * 2 - 1) * self.max_rotation).reshape(-1)
        shift = (torch.floor(uniforms[..., 1:] * (2 * self.max_shift + 1)) - self.max_shift).reshape(-1, 2)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid works in [-1, 1] coordinates: one pixel is 2/columns across, 2/rows down
        theta = torch.stack([torch.stack([cos, -sin, -2 * shift[:, 0] / columns], 1),
                             torch.stack([sin, cos, -2 * shift[:, 1] / rows], 1)], 1).to(x.dtype)
        images = x.reshape(k * m, 1, rows, columns)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        moved = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
        return moved.reshape(k, m, -1)
