"""L1: cost + strength/m * sum |W|. Its constant-size pull drives weights to
(nearly) zero: sparsity is its headline figure. As a penalty, its gradient
(the subgradient strength/m * sign(W)) overshoots zero every step, so under
plain SGD a weight the data does not need ends oscillating within lr *
strength/m of zero, never at it; the proximal update (soft-thresholding after
each step) puts such weights at exactly zero."""

from __future__ import annotations

from typing import Literal

from pipeline.techniques.penalty import PenaltyConfig, PenaltyTechnique


class L1Config(PenaltyConfig):
    """cost + strength/m * sum |W|; or, proximal, each step followed by the soft
    threshold W -= clamp(W, -t, t) with t = lr * strength/m (exact zeros)."""

    mode: Literal["penalty", "proximal"] = "penalty"


class L1(PenaltyTechnique):
    """For plain SGD the proximal update is the proximal gradient step of the
    L1 cost (ISTA); for Adam it is applied outside the adaptive step, as
    decoupled weight decay is for L2."""

    name = "l1"
    Config = L1Config
    statistic = "sparsity"
    power = 1

    @classmethod
    def key_figure(cls, config, metrics):
        weights = metrics["weights"]
        exact = f", {weights['zero_fraction']:.0%} exactly 0 (proximal)" if config.mode == "proximal" else ""
        return f"sparsity {weights['sparsity']:.0%}{exact}"

    def shrink(self, net):
        return self.per_matrix(net) if self.mode == "proximal" else []
