"""Inverted dropout: at train time each unit is kept with probability keep_prob
and scaled by 1/keep_prob; nothing at test time (weight scaling, folded into
training). After each hidden activation, and optionally on the input. At
test time the layers can also sample masks (Monte Carlo dropout)."""

from __future__ import annotations

from typing import Annotated, Callable, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from pipeline.core.schema import Schema, Seed
from pipeline.techniques.base import Technique

KeepProbability = Annotated[float, Field(gt=0, le=1)]


class DropoutConfig(Schema):
    """Inverted dropout after each hidden layer's activation (and optionally on the input)."""

    keep_prob: list[KeepProbability] = Field(min_length=1)  # one per hidden layer
    input_keep_prob: KeepProbability = 1.0
    # fresh: a new mask every step. fixed: the course notebook's behaviour, which
    # reseeds numpy before every forward pass and so reuses one mask throughout.
    mask: Literal["fresh", "fixed"] = "fresh"
    fixed_seed: Seed = 1


Scales = Callable[[int], torch.Tensor]  # batch size m -> (K, m, units): 1/keep_prob where kept, 0 where dropped


class StackedDropout(nn.Module):
    """Dropout for K networks, (K, m, units) -> same: each network keeps units
    with its own probability and draws its own masks. In evaluation mode it
    passes h through, unless sampling (Monte Carlo dropout): then it draws
    fresh masks from sampler()'s streams, which restart at each start_sampling()."""

    def __init__(self, scales: Scales, sampler: Callable[[], Scales]):
        super().__init__()
        self.scales, self.sampler = scales, sampler
        self.sampled: Scales | None = None

    def start_sampling(self) -> None:
        self.sampled = self.sampler()

    def stop_sampling(self) -> None:
        self.sampled = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.training:
            return h * self.scales(h.shape[1])
        return h if self.sampled is None else h * self.sampled(h.shape[1])


class Dropout(Technique):
    name = "dropout"
    Config = DropoutConfig
    sweeps = "keep_prob"  # every hidden layer's, set to the path's value
    stronger = "smaller"
    statistic = "squared_weight_sum"

    @classmethod
    def check(cls, config, hidden, has_dev):
        if len(config.keep_prob) != len(hidden):
            raise ValueError(f"dropout.keep_prob has {len(config.keep_prob)} values "
                             f"but model.hidden has {len(hidden)} layers")

    @classmethod
    def swept(cls, config, value):
        return cls.Config.model_validate({**config.model_dump(), "keep_prob": [value] * len(config.keep_prob)})

    @classmethod
    def key_figure(cls, config, metrics):
        keep = "/".join(f"{k:g}" for k in config.keep_prob)
        on_input = f", input {config.input_keep_prob:g}" if config.input_keep_prob < 1 else ""
        return f"keep {keep}{on_input}, {config.mask} masks"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.mask_kind = self.shared("mask")
        self.fixed_seed = self.shared("fixed_seed")
        # keep probabilities per model: column i for hidden layer i, the last for the input
        self.keep = [[*c.keep_prob, c.input_keep_prob] for c in configs]
        self._fixed: dict[tuple[int, int], torch.Tensor] = {}

    def layer(self, position, index, units):
        if position not in ("input", "after_activation"):
            return None
        keep = [row[index] for row in self.keep]  # index -1 is the input
        if min(keep) == 1:
            return None
        keep_tensor = self.batch.per_model(keep).view(-1, 1, 1)

        def sampler() -> Scales:  # Monte Carlo masks: always fresh, from streams of their own, never training's
            return self._fresh_scales(f"monte carlo dropout {index}", units, keep_tensor)

        if self.mask_kind == "fixed":
            return StackedDropout(lambda m: self._fixed_scales(m, index, keep_tensor), sampler)
        # per layer: masks of one layer never shift another's
        return StackedDropout(self._fresh_scales(f"dropout {index}", units, keep_tensor), sampler)

    def _fresh_scales(self, purpose: str, units: int, keep: torch.Tensor) -> Scales:
        streams, dtype, inverse = self.batch.streams(purpose), self.batch.dtype, 1 / keep

        def fresh_scales(m: int) -> torch.Tensor:
            # a unit is kept when its uniform u >= 1 - keep_prob, i.e. floor(u + keep_prob) = 1:
            # probability keep_prob, in two arithmetic passes (comparisons with
            # a per-network threshold run several times slower in torch)
            uniforms = streams.draw(lambda g: torch.rand(m, units, generator=g, dtype=dtype))
            return uniforms.add_(keep).floor_().mul_(inverse)

        return fresh_scales

    def _fixed_scales(self, m: int, index: int, keep: torch.Tensor) -> torch.Tensor:
        """The course notebook reseeds numpy with fixed_seed before every forward
        pass and draws np.random.rand(units, m) < keep_prob for each hidden layer
        in order: the same masks every step. We draw every hidden layer's (then
        the input's) once per batch size, whatever the keep probabilities."""
        if (m, index) not in self._fixed:
            rng = np.random.RandomState(self.fixed_seed)
            sizes = [*self.batch.hidden, self.batch.n_features]
            uniforms = [rng.rand(units, m).T for units in sizes][index]  # drawn units x examples, as the notebook
            masks = torch.as_tensor(np.stack([uniforms < k for k in keep.flatten().tolist()]), dtype=keep.dtype,
                                    device=keep.device)
            self._fixed[m, index] = masks / keep
        return self._fixed[m, index]
