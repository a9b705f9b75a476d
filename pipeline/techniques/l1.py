"""L1: cost + strength/m * sum |W|. Its constant-size pull drives weights to
(nearly) zero: sparsity is its headline figure."""

from __future__ import annotations

from pipeline.techniques.penalty import PenaltyConfig, PenaltyTechnique, WeightPenalty


class L1Config(PenaltyConfig):
    """cost + strength/m * sum |W|."""


class L1(PenaltyTechnique):
    name = "l1"
    Config = L1Config
    statistic = "sparsity"

    @classmethod
    def key_figure(cls, config, metrics):
        return f"sparsity {metrics['weights']['sparsity']:.0%}"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        strengths = batch.per_model([c.strengths(len(batch.hidden) + 1) for c in configs])
        self.term = WeightPenalty(strengths, 1 / batch.n_train, self.shared("regularize_bias"), power=1)

    def penalty(self, net):
        return self.term(net)
