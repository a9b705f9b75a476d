"""L1: cost + strength/m * sum |W|. Its constant-size pull drives weights to
(nearly) zero: sparsity is its headline figure."""

from __future__ import annotations

from pipeline.techniques.base import Technique
from pipeline.techniques.penalty import PenaltyConfig, weight_term


class L1Config(PenaltyConfig):
    """cost + strength/m * sum |W|."""


class L1(Technique):
    name = "l1"
    Config = L1Config
    sweeps = "strength"
    statistic = "sparsity"

    @classmethod
    def check(cls, config, hidden, has_dev):
        config.check_layers(cls.name, hidden)

    @classmethod
    def key_figure(cls, config, metrics):
        return f"sparsity {metrics['weights']['sparsity']:.0%}"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.regularize_bias = self.shared("regularize_bias")
        self.strengths = batch.per_model([c.strengths(len(batch.hidden) + 1) for c in configs])

    def penalty(self, net):
        return weight_term(net, self.strengths, 1 / self.batch.n_train, self.regularize_bias, power=1)
