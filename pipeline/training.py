"""Training: a LightningModule that fits the network on in-memory tensors.

The data sets are tiny, so framework overhead, not arithmetic, sets the pace.
One Lightning batch therefore runs `trainer.eval_every` optimizer steps on
tensors that never leave memory, and Lightning's per-batch machinery
(hooks, validation, early stopping, logging) runs once per evaluation instead
of once per step. Every optimizer step still goes through Lightning's
optimizer wrapper, so trainer.global_step counts real gradient steps.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from torch.utils.data import DataLoader

from pipeline.config import RunConfig, TrainerConfig
from pipeline.datasets import Splits
from pipeline.errors import PipelineError
from pipeline.model import MLP, as_tensors
from pipeline.regularization import Regularizer, build

for _name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Raised by Lightning's own internals with current torch; nothing for users to act on.
warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


class DivergenceError(PipelineError):
    pass


class Classifier(pl.LightningModule):
    def __init__(
        self,
        net: MLP,
        regularizers: list[Regularizer],
        config: TrainerConfig,
        train: tuple[torch.Tensor, torch.Tensor],
        dev: tuple[torch.Tensor, torch.Tensor],
        seed: int,
    ):
        super().__init__()
        self.net = net
        self.regularizers = regularizers
        self.config = config
        self.train_data, self.dev_data = train, dev
        self.n_train = len(train[1])
        self.automatic_optimization = False  # we step several times per Lightning batch
        self._shuffle = torch.Generator().manual_seed(seed)
        self._order, self._cursor = None, 0
        self.initial_cost: float | None = None

    # --- data: the whole training set is one Lightning batch ---------------
    def train_dataloader(self):
        return DataLoader([self.train_data], batch_size=None)

    def val_dataloader(self):
        # validation evaluates the stored train and dev tensors in full
        return DataLoader([0], batch_size=None)

    def configure_optimizers(self):
        decay: dict[torch.nn.Parameter, float] = {}
        for regularizer in self.regularizers:
            decay.update(regularizer.weight_decay(self.net, self.n_train))
        if not decay:
            return OPTIMIZERS[self.config.optimizer](self.net.parameters(), lr=self.config.lr)
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for parameter in self.net.parameters():
            groups.setdefault(decay.get(parameter, 0.0), []).append(parameter)
        # Decoupled weight decay: AdamW for Adam; for plain SGD, weight_decay is that already.
        optimizer = torch.optim.AdamW if self.config.optimizer == "adam" else torch.optim.SGD
        return optimizer([{"params": ps, "weight_decay": wd} for wd, ps in groups.items()], lr=self.config.lr)

    # --- training ----------------------------------------------------------
    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.net.loss(self.net(x), y)
        for regularizer in self.regularizers:
            penalty = regularizer.penalty(self.net, self.n_train)
            if penalty is not None:
                loss = loss + penalty
        return loss

    def _minibatch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.batch_size
        if size is None or size >= self.n_train:
            return x, y
        if self._order is None or self._cursor + size > self.n_train:
            self._order, self._cursor = torch.randperm(self.n_train, generator=self._shuffle), 0
        index = self._order[self._cursor : self._cursor + size]
        self._cursor += size
        return x[index], y[index]

    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizer = self.optimizers()
        steps = min(self.config.eval_every, self.trainer.max_steps - self.global_step)
        for _ in range(steps):
            xb, yb = self._minibatch(x, y)
            for regularizer in self.regularizers:
                xb = regularizer.augment(xb)
            loss = self.objective(xb, yb)
            if self.initial_cost is None:
                # The cost the optimizer sees (penalties, dropout and all) before
                # any update: the course notebooks' "cost after iteration 0".
                self.initial_cost = loss.item()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
            for regularizer in self.regularizers:
                regularizer.after_optimizer_step(self.net)

    # --- evaluation --------------------------------------------------------
    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        metrics = {}
        for part, (x, y) in (("train", self.train_data), ("dev", self.dev_data)):
            if len(y) == 0:
                continue
            logits = self.net(x)
            metrics[f"{part}_loss"] = self.net.loss(logits, y).item()
            metrics[f"{part}_accuracy"] = (self.net.predict(logits) == y).double().mean().item()
        return metrics

    def _log(self, metrics: dict[str, float]) -> None:
        # Lightning's own step counter for logging counts batches; MLflow's
        # x-axis must be the gradient step, so we pass it explicitly.
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    def on_train_start(self) -> None:
        was_training = self.net.training
        self.net.eval()
        self._log(self.measure())
        self.net.train(was_training)

    def validation_step(self, batch, batch_idx):
        metrics = self.measure()
        # Runs after every Lightning batch, on the weights after its last step;
        # once non-finite, weights stay so, so checking here catches every divergence.
        if not math.isfinite(metrics["train_loss"]):
            raise DivergenceError(
                f"training diverged: the train loss is {metrics['train_loss']} at step {self.global_step}; "
                "lower trainer.lr or the regularization strengths"
            )
        self.log_dict(metrics, logger=False, batch_size=1)  # for callbacks (early stopping)
        self._log(metrics)


@dataclass
class FitResult:
    net: MLP
    steps: int
    key_figures: dict[str, float]


def fit(run: RunConfig, splits: Splits, logger: Logger | None = None) -> FitResult:
    """Train run's network on splits; same config and data give the same weights, bit for bit."""
    pl.seed_everything(run.seed, verbose=False)
    dtype = torch.float64 if run.trainer.precision == "64-true" else torch.float32
    net = MLP(splits.n_features, splits.n_classes, run.model, run.regularization, dtype)
    regularizers = build(run.regularization, run.seed, splits.image_shape)
    module = Classifier(
        net,
        regularizers,
        run.trainer,
        train=as_tensors(splits.X["train"], splits.y["train"], dtype),
        dev=as_tensors(splits.X["dev"], splits.y["dev"], dtype),
        seed=run.seed,
    )
    # deterministic=True switches torch's global deterministic mode on; put it
    # back afterwards so fit() leaves no global state behind (benchmarks, tests).
    previous = torch.are_deterministic_algorithms_enabled()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=run.trainer.max_steps,
        max_epochs=-1,
        logger=logger if logger is not None else False,
        callbacks=[c for r in regularizers for c in r.callbacks()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,  # one Lightning batch is eval_every gradient steps
        deterministic=True,
        precision=run.trainer.precision,
    )
    try:
        trainer.fit(module)
    finally:
        torch.use_deterministic_algorithms(previous)
    net.eval()
    figures = {"initial_cost": module.initial_cost}
    figures |= {key: value for r in regularizers for key, value in r.key_figures(trainer).items()}
    return FitResult(net, trainer.global_step, figures)
