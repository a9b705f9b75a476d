"""What a regularization technique is: one class that holds everything about it.

The engine trains K networks of one architecture at once (seeds and, along a
regularization path, strengths). A technique acts on all K through the hooks
below, each model with its own configuration, strength and random stream;
every hook's default does nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.core.schema import Schema


class Streams:
    """Random numbers for one purpose (dropout masks of one layer, jitter, ...):
    one generator per distinct seed, seeded by the seed and the purpose alone.
    A network draws the same numbers whatever its batch-mates; networks that
    share a seed (the points of a regularization path) share their draws,
    which makes their comparison paired, and makes a path's draws as cheap
    as its seeds'. The generators are the CPU's, whatever the device: a
    network draws the same numbers on a GPU, moved there."""

    def __init__(self, seeds: tuple[int, ...], purpose: str, device: torch.device = torch.device("cpu")):
        distinct = sorted(set(seeds))
        key = zlib.crc32(purpose.encode())
        self.generators = [torch.Generator().manual_seed(int(np.random.SeedSequence([seed, key]).generate_state(1)[0]))
                           for seed in distinct]
        self.index = torch.tensor([distinct.index(seed) for seed in seeds])
        self.one_each = list(seeds) == distinct
        self.device = device

    def draw(self, make: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
        """(K, ...): make(generator) for each seed, handed to every network with that seed."""
        drawn = torch.stack([make(generator) for generator in self.generators])
        return (drawn if self.one_each else drawn.index_select(0, self.index)).to(self.device)


@dataclass(frozen=True)
class Batch:
    """What a technique knows of the K networks it acts on."""

    seeds: tuple[int, ...]
    n_features: int
    hidden: tuple[int, ...]
    n_train: int  # m in the penalties' strength/m
    dtype: torch.dtype
    image_shape: tuple[int, int] | None = None
    device: torch.device = torch.device("cpu")  # where the networks, their data and every technique's tensors live

    @property
    def k(self) -> int:
        return len(self.seeds)

    def streams(self, purpose: str) -> Streams:
        return Streams(self.seeds, purpose, self.device)

    def per_model(self, values: list[float]) -> torch.Tensor:
        """One value per model as a (K,) tensor of the networks' dtype."""
        return torch.tensor(values, dtype=self.dtype, device=self.device)


class Technique:
    """A regularization technique applied to the K networks of a batch.

    A subclass holds all of it: `Config` (its schema, the keys of
    conf/regularization/<name>.yaml), what it adds to the network, its penalty,
    its decoupled weight decay, its augmentation, its constraint after each
    optimizer step, its stop rule, the value a regularization path sweeps and
    the figure the report shows for it.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Schema]]
    sweeps: ClassVar[str | None] = None  # the config key a regularization path varies
    # which way along that key regularizes more: "larger" (a strength) or "smaller" (max-norm's c, a keep probability)
    stronger: ClassVar[str] = "larger"
    # the weight statistic a path plots against strength (a key of analysis.weights)
    statistic: ClassVar[str] = "squared_weight_sum"

    def __init__(self, configs: list, batch: Batch):
        self.configs, self.batch = configs, batch

    # --- configuration -------------------------------------------------------------
    @classmethod
    def check(cls, config, hidden: list[int], has_dev: bool) -> None:
        """Raise ValueError when config cannot work with this network or data."""

    @classmethod
    def swept(cls, config, value: float):
        """The config with the path's swept value set to value (validated)."""
        return cls.Config.model_validate({**config.model_dump(), cls.sweeps: value})

    @classmethod
    def key_figure(cls, config, metrics: dict) -> str:
        """The number that shows what the technique did, from a run's metrics document."""
        return ""

    def strength_values(self, k: int) -> dict[str, float | list[float]]:
        """Network k's config values that set how strongly the technique acts, by
        key: what a message names when a strength is out of all proportion."""
        return {self.sweeps: getattr(self.configs[k], self.sweeps)} if self.sweeps else {}

    def shared(self, key: str):
        """A config value every model of the batch must share (it shapes the network)."""
        values = {getattr(config, key) for config in self.configs}
        if len(values) > 1:
            raise ValueError(f"{self.name}.{key} differs between networks trained together: {sorted(values)}")
        return values.pop()

    # --- the network -------------------------------------------------------------------
    def layer(self, position: str, index: int, units: int) -> nn.Module | None:
        """A layer to insert at position 'input' (index -1), or 'before_activation'
        / 'after_activation' of hidden layer index with units units."""
        return None

    # --- each optimizer step -----------------------------------------------------------
    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """A perturbed copy of a training batch (K, m, features); never evaluation data."""
        return x

    def penalty(self, net) -> torch.Tensor | None:
        """Per model, (K,), a term added to its mean data loss."""
        return None

    def decay(self, net) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, per-model coefficient (K,)) pairs of decoupled weight decay:
        each step shrinks the parameter by lr * coefficient before the optimizer's own step."""
        return []

    def shrink(self, net) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, per-model threshold (K,)) pairs of a proximal L1 step: after
        the optimizer's step, each entry moves lr * threshold towards zero, and
        those within it become exactly zero."""
        return []

    def constrain(self, net) -> None:
        """A constraint put on the weights after every optimizer step."""

    # --- each evaluation ---------------------------------------------------------------
    def evaluated(self, step: int, metrics: dict[str, torch.Tensor], net) -> torch.Tensor | None:
        """After each dev evaluation: a (K,) bool tensor of the models this rule
        stops now (the engine then freezes them), or None."""
        return None

    def finish(self, net, step: int) -> None:
        """When training ends (at step), for every model."""

    def figures(self) -> list[dict[str, float]]:
        """Per model, numbers that show what the technique did (MLflow metrics, the report)."""
        return [{} for _ in self.configs]
