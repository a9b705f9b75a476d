"""Early stopping: stop a network when its dev metric has not improved for
`patience` evaluations, and give back its best weights."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, NonNegativeFloat

from pipeline.core.schema import Schema
from pipeline.techniques.base import Technique


class EarlyStoppingConfig(Schema):
    monitor: Literal["dev_loss", "dev_accuracy"] = "dev_loss"
    patience: int = Field(ge=1)  # evaluations (each trainer.eval_every steps) without improvement before stopping
    min_delta: NonNegativeFloat = 0.0


class EarlyStopping(Technique):
    """Per network, the rule of Lightning's EarlyStopping callback (a change
    beyond min_delta in the right direction is an improvement; `patience`
    evaluations without one, or a non-finite metric, stop it) plus a copy of
    the weights of its best evaluation, put back when it stops or training
    ends. A stopped network is frozen while the others go on."""

    name = "early_stopping"
    Config = EarlyStoppingConfig

    @classmethod
    def check(cls, config, hidden, has_dev):
        if not has_dev:
            raise ValueError("early_stopping needs a dev set, but split.dev is 0")

    @classmethod
    def key_figure(cls, config, metrics):
        training = metrics["training"]
        return f"stopped at step {training['stopped_step']:.0f} (best {training['best_step']:.0f})"

    def __init__(self, configs, batch):
        super().__init__(configs, batch)
        self.monitor = self.shared("monitor")
        maximize = self.monitor.endswith("accuracy")
        self.improves = torch.gt if maximize else torch.lt
        # Lightning compares current - min_delta with the best, min_delta negated when minimizing
        self.min_delta = batch.per_model([c.min_delta * (1 if maximize else -1) for c in configs])
        self.patience = torch.tensor([c.patience for c in configs], device=batch.device)
        self.start = -torch.inf if maximize else torch.inf
        self.best: torch.Tensor | None = None  # in the metric's dtype, as Lightning keeps it
        self.wait = torch.zeros(batch.k, dtype=torch.long, device=batch.device)
        self.best_step = torch.zeros(batch.k, dtype=torch.long, device=batch.device)
        self.stopped_step = torch.full((batch.k,), -1, dtype=torch.long, device=batch.device)
        self.best_state: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def evaluated(self, step, metrics, net):
        current = metrics[self.monitor]
        if self.best is None:
            self.best = torch.full_like(current, self.start)
        running = self.stopped_step < 0
        finite = torch.isfinite(current)
        improved = running & finite & self.improves(current - self.min_delta.to(current.dtype), self.best)
        self.best = torch.where(improved, current, self.best)
        self.best_step[improved] = step
        self.wait = torch.where(improved, 0, self.wait + 1)
        state = net.state_dict()
        if self.best_state is None:
            self.best_state = {name: value.clone() for name, value in state.items()}
        for name, value in state.items():
            self.best_state[name][improved] = value[improved]
        stop = running & (~finite | (self.wait >= self.patience))
        self.stopped_step[stop] = step
        self._restore(net, stop)
        return stop

    def finish(self, net, step):
        self._restore(net, self.stopped_step < 0)
        self.stopped_step = torch.where(self.stopped_step < 0, step, self.stopped_step)

    @torch.no_grad()
    def _restore(self, net, which: torch.Tensor) -> None:
        if self.best_state is None or not which.any():
            return
        for name, value in net.state_dict().items():
            value[which] = self.best_state[name][which]

    def figures(self):
        return [{"best_step": int(b), "stopped_step": int(s)} for b, s in zip(self.best_step, self.stopped_step)]
