"""The LightningModule that trains K networks at once on in-memory tensors.

The data sets are tiny, so framework overhead, not arithmetic, sets the pace.
One Lightning batch therefore runs `trainer.eval_every` optimizer steps on
tensors that never leave memory, and Lightning's per-batch machinery
(hooks, validation, logging) runs once per evaluation instead of once per
step. Each network's loss is its own mean, and the optimizer's update is
elementwise (SGD, Adam), so the sum of the K losses trains K independent
networks, each with its own optimizer state.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from pipeline.config import TrainerConfig
from pipeline.core.errors import PipelineError, raise_pending
from pipeline.engine.adam import Adam
from pipeline.engine.network import StackedNetwork
from pipeline.engine.strengths import check_strengths
from pipeline.techniques import Batch, Technique

# Adam: the engine's own (pipeline/engine/adam.py), torch's arithmetic over the
# whole batch at once and the same bits wherever a network sits in it. For
# plain SGD torch's per-tensor update is faster.
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": Adam}
CURVES = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")


class DivergenceError(PipelineError):
    pass


def objective(net: StackedNetwork, techniques: list[Technique], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per network, (K,): its mean data loss plus its penalties."""
    loss = net.loss(net(x), y)
    for technique in techniques:
        if (penalty := technique.penalty(net)) is not None:
            loss = loss + penalty
    return loss


@functools.cache
def fused_objective() -> Callable:
    """objective compiled by torch.compile (inductor: forward, penalties and
    loss, and through AOTAutograd their backward, fused into generated C++).
    Compiled once per process and network shape (seconds); its kernels round
    in their own order, so the networks are not the eager step's bit for bit
    (trainer.fused; docs/speed.md)."""
    # dynamo traces the aligned products' lru_cache'd helper (pure integer arithmetic) and says so once
    warnings.filterwarnings("ignore", message=".*functools.lru_cache.*-wrapped function")
    return torch.compile(objective)


class BatchTraining(pl.LightningModule):
    def __init__(self, net: StackedNetwork, techniques: list[Technique], config: TrainerConfig, batch: Batch,
                 train: tuple[torch.Tensor, torch.Tensor], dev: tuple[torch.Tensor, torch.Tensor],
                 labels: list[str], weight_steps: frozenset[int] = frozenset()):
        super().__init__()
        self.net, self.techniques, self.config = net, techniques, config
        self.train_data = (train[0], net.targets(train[1]))
        self.full_batch = (train[0].expand(net.k, *train[0].shape), self.train_data[1])
        self.dev_data = dev
        self.labels = labels  # how errors name each network ("seed 3")
        self.automatic_optimization = False  # we step many times per Lightning batch
        self.shuffles = batch.streams("minibatch order")
        self.orders: torch.Tensor | None = None
        self.cursor = 0
        self.steps = 0
        self.running = torch.ones(batch.k, dtype=torch.bool, device=batch.device)  # not stopped by a technique's rule
        self.stopped_step = torch.full((batch.k,), -1, device=batch.device)
        self.frozen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (tensor, its values when stopped)
        self.initial_cost: torch.Tensor | None = None
        self.history: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.weight_steps = weight_steps
        self.states: dict[int, dict[str, torch.Tensor]] = {}  # step -> every network's state: net.state_dict()
        self.ones = torch.ones(batch.k, dtype=batch.dtype, device=batch.device)
        self.trainable = list(net.parameters())
        # decoupled weight decay: (parameter, per-network coefficient shaped to broadcast over it)
        self.decays = [(p, c.view(-1, *[1] * (p.dim() - 1))) for t in techniques for p, c in t.decay(net)]
        # proximal L1: (parameter, per-network threshold lr * strength/m shaped to broadcast over it)
        self.shrinks = [(p, config.lr * c.view(-1, *[1] * (p.dim() - 1))) for t in techniques
                        for p, c in t.shrink(net)]

    # --- data: one Lightning batch is eval_every optimizer steps ------------
    def train_dataloader(self):
        return DataLoader([0], batch_size=None)

    def val_dataloader(self):
        return DataLoader([0], batch_size=None)

    def configure_optimizers(self):
        return OPTIMIZERS[self.config.optimizer](self.net.parameters(), lr=self.config.lr)

    # --- training ------------------------------------------------------------
    def minibatch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each network's next minibatch from its own shuffled order, (K, size,
        features) and (K, size); or the whole training set, shared."""
        x, y = self.train_data
        size, n = self.config.batch_size, len(y)
        if size is None or size >= n:
            return self.full_batch
        if self.orders is None or self.cursor + size > n:
            self.orders = self.shuffles.draw(lambda g: torch.randperm(n, generator=g))
            self.cursor = 0
        index = self.orders[:, self.cursor:self.cursor + size]
        self.cursor += size
        return x[index], y[index]

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """objective(), eager, or compiled where trainer.fused asks for it."""
        return (fused_objective() if self.config.fused else objective)(self.net, self.techniques, x, y)

    def training_step(self, batch, batch_idx):
        # Lightning's optimizer wrapper and manual_backward cost more than a
        # step of these networks; on the CPU at full precision they do nothing
        # more than the plain torch calls.
        optimizer = self.optimizers().optimizer
        chunk = min(self.config.eval_every, self.config.max_steps - self.steps)
        for _ in range(chunk):
            self.step(optimizer)
            self.steps += 1
            if self.steps in self.weight_steps:
                self.record_state()
        raise_pending()  # a Ctrl-C or SIGTERM whose exception the garbage collector swallowed

    def step(self, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """One optimizer step of every network; returns each one's objective (K,) before it."""
        net = self.net
        x, y = self.minibatch()
        for technique in self.techniques:
            x = technique.augment(x)
        loss = self.objective(x, y)
        if self.initial_cost is None:
            # the objective before any update, penalties and dropout included:
            # the course notebooks' "cost after iteration 0"
            self.initial_cost = loss.detach().clone()
        for parameter in self.trainable:  # optimizer.zero_grad's profiler context costs more than this
            parameter.grad = None
        loss.backward(self.ones)  # the sum of the K losses: each network gets its own loss's gradient
        if self.decays:
            with torch.no_grad():
                for parameter, coefficient in self.decays:  # decoupled, before the step, as AdamW
                    parameter.mul_(1 - self.config.lr * coefficient)
        optimizer.step()
        if self.shrinks:
            with torch.no_grad():
                for parameter, threshold in self.shrinks:  # soft threshold: within it, exactly w - w = 0
                    parameter.sub_(torch.clamp(parameter, -threshold, threshold))
        for technique in self.techniques:
            technique.constrain(net)
        if self.frozen:
            self._hold_frozen()
        return loss.detach()

    @torch.no_grad()
    def record_state(self) -> None:
        """Every network's whole state now (weights, biases, batch-norm statistics), enough to rebuild it
        later: a copy of each stacked tensor, no loop over networks."""
        self.states[self.steps] = {name: tensor.detach().clone() for name, tensor in self.net.state_dict().items()}

    @torch.no_grad()
    def _hold_frozen(self) -> None:
        """Put stopped networks back where they stopped: the batch's optimizer moved them too."""
        for tensor, values in self.frozen:
            tensor[~self.running] = values[~self.running]

    # --- evaluation ------------------------------------------------------------
    def measure(self) -> dict[str, torch.Tensor]:
        metrics = {}
        for part, (x, y) in (("train", self.train_data), ("dev", self.dev_data)):
            if len(y):
                metrics |= {f"{part}_{name}": value for name, value in self.net.measure(x, y).items()}
        return metrics

    def on_train_start(self) -> None:
        # Before any step, a non-finite value is the data's doing, not the learning rate's.
        for part, (x, _) in (("train", self.train_data), ("dev", self.dev_data)):
            if not torch.isfinite(x).all():
                raise PipelineError(
                    f"the {part} features are not finite in {str(x.dtype).removeprefix('torch.')} (inf or NaN, "
                    f"e.g. beyond {torch.finfo(x.dtype).max:.1e}): fix or rescale the data (split.standardize)")
        metrics = self.measure()
        if not torch.isfinite(metrics["train_loss"]).all():
            raise PipelineError("the train loss is not finite before the first step: the features' scale "
                                "overflows the network; rescale the data (split.standardize)")
        check_strengths(self.net, self.techniques, metrics["train_loss"], self.config.lr, self.labels)
        self.history.append((0, metrics))
        if 0 in self.weight_steps:
            self.record_state()

    def validation_step(self, batch, batch_idx):
        metrics = self.measure()
        # Runs after every chunk of steps; once non-finite, weights stay so, so
        # checking here catches every divergence.
        diverged = self.running & ~torch.isfinite(metrics["train_loss"])
        if diverged.any():
            k = int(diverged.nonzero()[0])
            raise DivergenceError(
                f"training diverged ({self.labels[k]}): the train loss is {metrics['train_loss'][k].item()} at step "
                f"{self.steps}; lower trainer.lr or the regularization strengths")
        overflowed = self.running & ~self._optimizer_state_finite()
        if overflowed.any():
            k = int(overflowed.nonzero()[0])
            raise DivergenceError(
                f"the optimizer's state overflowed {str(self.net.dtype).removeprefix('torch.')} by step {self.steps} "
                f"({self.labels[k]}): a gradient's square is beyond its range, so the weights stop moving; rescale "
                f"the data (split.standardize) or lower the regularization strengths")
        self.history.append((self.steps, metrics))
        for technique in self.techniques:
            stop = technique.evaluated(self.steps, metrics, self.net)
            if stop is not None and (stop & self.running).any():
                self._freeze(stop & self.running)
        if self.steps >= self.config.max_steps or not self.running.any():
            self.trainer.should_stop = True

    @torch.no_grad()
    def _optimizer_state_finite(self) -> torch.Tensor:
        """Per network, (K,): no inf or NaN in its optimizer state. A finite
        gradient whose square overflows leaves Adam's weights finite but frozen
        (its update is exp_avg / sqrt(inf) = 0), which the loss check cannot see."""
        finite = torch.ones(self.net.k, dtype=torch.bool, device=self.device)
        for state in self.optimizers().optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value) and value.dim() > 0:  # (K, ...) per parameter; the step count is a scalar
                    finite &= torch.isfinite(value).reshape(self.net.k, -1).all(1)
        return finite

    @torch.no_grad()
    def _freeze(self, stop: torch.Tensor) -> None:
        if not self.frozen:
            self.frozen = [(tensor, tensor.detach().clone()) for tensor in self.net.state_dict().values()]
        for tensor, values in self.frozen:
            values[stop] = tensor[stop]
        self.running &= ~stop
        self.stopped_step[stop] = self.steps

    def on_train_end(self) -> None:
        for technique in self.techniques:
            technique.finish(self.net, self.steps)
        self.stopped_step = torch.where(self.stopped_step < 0, self.steps, self.stopped_step)

    def curves(self) -> list[list[dict[str, float]]]:
        """Per network, its evaluations up to where it stopped: [{"step": s, "train_loss": ...}, ...]."""
        return [[{"step": step, **{name: value[k].item() for name, value in metrics.items()}}
                 for step, metrics in self.history if step <= self.stopped_step[k]]
                for k in range(self.net.k)]
