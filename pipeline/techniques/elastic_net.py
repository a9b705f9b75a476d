"""Elastic net: cost + l1_strength/m * sum |W| + l2_strength/(2m) * sum W^2."""

from __future__ import annotations

from pydantic import NonNegativeFloat

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique
from pipeline.techniques.penalty import WeightPenalty


class ElasticNetConfig(Schema):
    """cost + l1_strength/m * sum |W| + l2_strength/(2m) * sum W^2."""

    l1_strength: NonNegativeFloat
    l2_strength: NonNegativeFloat
    regularize_bias: bool = False


class ElasticNet(Technique):
    name = "elastic_net"
    Config = ElasticNetConfig
    statistic = "sparsity"

    @classmethod
    def key_figure(cls, config, metrics):
        weights = metrics["weights"]
        return f"sparsity {weights['sparsity']:.0%}, sum W^2 {weights['squared_weight_sum']:.1f}"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        bias, n, m = self.shared("regularize_bias"), len(batch.hidden) + 1, batch.n_train
        self.l1 = WeightPenalty(batch.per_model([[c.l1_strength] * n for c in configs]), 1 / m, bias, power=1)
        self.l2 = WeightPenalty(batch.per_model([[c.l2_strength] * n for c in configs]), 1 / (2 * m), bias, power=2)

    def strength_values(self, k):
        return {"l1_strength": self.configs[k].l1_strength, "l2_strength": self.configs[k].l2_strength}

    def penalty(self, net):
        present = [term for term in (self.l1(net), self.l2(net)) if term is not None]
        return sum(present) if present else None
