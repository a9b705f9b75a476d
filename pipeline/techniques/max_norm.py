"""Max-norm: after every optimizer step, each neuron's incoming weight vector
is scaled back to norm <= c."""

from __future__ import annotations

import torch
from pydantic import PositiveFloat

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


class MaxNormConfig(Schema):
    """After every optimizer step, each neuron's incoming weight vector is
    scaled back to norm <= c."""

    c: PositiveFloat


class MaxNorm(Technique):
    """A neuron's incoming weights are a column of the (in, out) weight matrix;
    columns already within the bound are left exactly as they are."""

    name = "max_norm"
    Config = MaxNormConfig
    sweeps = "c"
    stronger = "smaller"
    statistic = "max_column_norm"

    @classmethod
    def key_figure(cls, config, metrics):
        return f"max column norm {metrics['weights']['max_column_norm']:.2f} (c = {config.c:g})"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.c = batch.per_model([config.c for config in configs]).view(-1, 1, 1)

    @torch.no_grad()
    def constrain(self, net):
        for layer in net.linear_layers():
            norms = layer.weight.norm(dim=1, keepdim=True)
            layer.weight.mul_(torch.clamp(self.c / norms.clamp_min(1e-12), max=1.0))
