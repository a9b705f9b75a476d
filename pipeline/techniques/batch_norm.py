"""Batch normalization of each hidden layer's pre- (or post-) activations:
over the batch at train time, with running statistics at test time."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


class BatchNormConfig(Schema):
    """Batch normalization after each hidden linear layer."""

    position: Literal["before_activation", "after_activation"] = "before_activation"
    momentum: float = Field(default=0.1, gt=0, le=1)


class StackedBatchNorm(nn.Module):
    """Batch norm of K networks, (K, m, units) -> same, each with its own batch
    statistics, running statistics and scale and shift. torch's batch_norm
    sees the K * units columns as channels, so every network is normalized
    exactly as nn.BatchNorm1d would normalize it alone."""

    def __init__(self, k: int, units: int, momentum: float, dtype: torch.dtype, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(k, units, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, units, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(k, units, dtype=dtype))
        self.register_buffer("running_var", torch.ones(k, units, dtype=dtype))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        k, m, units = h.shape
        columns = h.transpose(0, 1).reshape(m, k * units)
        normalized = F.batch_norm(columns, self.running_mean.view(-1), self.running_var.view(-1),
                                  self.weight.view(-1), self.bias.view(-1), self.training, self.momentum, self.eps)
        return normalized.view(m, k, units).transpose(0, 1)


class BatchNorm(Technique):
    name = "batch_norm"
    Config = BatchNormConfig

    @classmethod
    def key_figure(cls, config, metrics):
        return f"batch norm {config.position.replace('_', ' ')}"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.position = self.shared("position")
        self.momentum = self.shared("momentum")

    def layer(self, position, index, units):
        if position != self.position:
            return None
        return StackedBatchNorm(self.batch.k, units, self.momentum, self.batch.dtype)
