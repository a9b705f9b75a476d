"""Batch normalization of each hidden layer's pre- (or post-) activations:
over the batch at train time, with running statistics at test time."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from pipeline.core.errors import PipelineError
from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


class BatchNormConfig(Schema):
    """Batch normalization after each hidden linear layer."""

    position: Literal["before_activation", "after_activation"] = "before_activation"
    momentum: float = Field(default=0.1, gt=0, le=1)


class StackedBatchNorm(nn.Module):
    """Batch norm of K networks, (K, m, units) -> same, each with its own batch
    statistics, running statistics and scale and shift, as nn.BatchNorm1d
    normalizes one network alone. Written out from means over each network's
    own rows rather than torch's batch_norm, whose gradient rounds a channel
    differently by where it falls among the K * units channels (see
    pipeline/engine/kernels.py)."""

    def __init__(self, k: int, units: int, momentum: float, dtype: torch.dtype, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(k, units, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, units, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(k, units, dtype=dtype))
        self.register_buffer("running_var", torch.ones(k, units, dtype=dtype))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        m = h.shape[1]
        if self.training:
            if m < 2:
                raise PipelineError("batch norm needs at least 2 examples per batch: raise trainer.batch_size")
            mean = h.mean(1, keepdim=True)
            centered = h - mean
            variance = centered.square().mean(1, keepdim=True)
            with torch.no_grad():  # the running variance is the unbiased one, as torch's
                self.running_mean.mul_(1 - self.momentum).add_(mean.squeeze(1) * self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(variance.squeeze(1) * (m / (m - 1) * self.momentum))
        else:
            centered = h - self.running_mean.unsqueeze(1)
            variance = self.running_var.unsqueeze(1)
        return centered * torch.rsqrt(variance + self.eps) * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


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
