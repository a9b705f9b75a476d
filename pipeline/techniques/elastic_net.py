"""Elastic net: cost + l1_strength/m * sum |W| + l2_strength/(2m) * sum W^2."""

from __future__ import annotations

from pydantic import NonNegativeFloat

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique
from pipeline.techniques.penalty import weight_term


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
        self.regularize_bias = self.shared("regularize_bias")
        n = len(batch.hidden) + 1
        self.l1 = batch.per_model([[c.l1_strength] * n for c in configs])
        self.l2 = batch.per_model([[c.l2_strength] * n for c in configs])

    def penalty(self, net):
        m, bias = self.batch.n_train, self.regularize_bias
        terms = [weight_term(net, self.l1, 1 / m, bias, power=1), weight_term(net, self.l2, 1 / (2 * m), bias, power=2)]
        present = [t for t in terms if t is not None]
        return sum(present) if present else None
