"""L2: cost + strength/(2m) * sum W^2, whose gradient strength/m * W shrinks
every weight a little each step; or, decoupled, that shrinkage applied by the
optimizer step itself (AdamW-style weight decay)."""

from __future__ import annotations

from typing import Literal

from pipeline.techniques.penalty import PenaltyConfig, PenaltyTechnique


class L2Config(PenaltyConfig):
    """cost + strength/(2m) * sum W^2; or, decoupled, the optimizer's weight decay
    (AdamW-style: W -= lr * strength/m * W outside the adaptive step)."""

    mode: Literal["penalty", "decoupled"] = "penalty"


class L2(PenaltyTechnique):
    """For plain SGD, penalty and decoupled decay are the same update; for Adam
    they differ, since Adam rescales the penalty's gradient per weight and
    decoupled decay shrinks all weights alike."""

    name = "l2"
    Config = L2Config
    statistic = "squared_weight_sum"
    power = 2

    @classmethod
    def key_figure(cls, config, metrics):
        decoupled = " (decoupled decay)" if config.mode == "decoupled" else ""
        return f"sum W^2 {metrics['weights']['squared_weight_sum']:.1f}{decoupled}"

    def decay(self, net):
        return self.per_matrix(net) if self.mode == "decoupled" else []
