"""Regularization techniques as small composable pieces.

A recipe (conf/regularization/*.yaml composed by conf/suite/*.yaml) names the
techniques it uses; build() turns each into a Regularizer. The training loop
asks every regularizer for its penalty term, its Lightning callbacks and its
key figures; architectural techniques (dropout) shape the network in
pipeline.model instead.
"""

from __future__ import annotations

import copy

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping as LightningEarlyStopping

from pipeline.config import EarlyStoppingConfig, L2Config, RecipeConfig
from pipeline.model import MLP


class Regularizer:
    """The hooks a technique may use; each default does nothing."""

    def penalty(self, net: MLP, n_train: int) -> torch.Tensor | None:
        """A term added to the mean data loss of every step."""
        return None

    def callbacks(self) -> list[pl.Callback]:
        return []

    def key_figures(self, trainer: pl.Trainer) -> dict[str, float]:
        """Numbers that show what the technique did, for MLflow and the report."""
        return {}


def penalized_parameters(net: MLP, include_bias: bool) -> list[torch.Tensor]:
    layers = net.linear_layers()
    return [layer.weight for layer in layers] + ([layer.bias for layer in layers] if include_bias else [])


class L2(Regularizer):
    """strength/(2m) * sum of squared weights, m the number of training
    examples: the gradient adds strength/m * W to each weight matrix."""

    def __init__(self, config: L2Config):
        self.config = config

    def penalty(self, net: MLP, n_train: int) -> torch.Tensor:
        squares = sum(p.pow(2).sum() for p in penalized_parameters(net, self.config.regularize_bias))
        return self.config.strength / (2 * n_train) * squares


class RestoreBestWeights(pl.Callback):
    """Keep the weights of the best dev evaluation in memory and put them back
    when training ends, so early stopping returns the best model, not the last."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best: float | None = None
        self.best_step = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        value = float(trainer.callback_metrics[self.monitor])
        if self._improved(value):
            self.best, self.best_step = value, trainer.global_step
            self.best_state = copy.deepcopy(module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


class EarlyStopping(Regularizer):
    """Stop when the dev metric has not improved by min_delta for `patience`
    evaluations (Lightning's callback) and restore the best weights seen."""

    def __init__(self, config: EarlyStoppingConfig):
        mode = "min" if config.monitor.endswith("loss") else "max"
        self.stopper = LightningEarlyStopping(
            monitor=config.monitor,
            mode=mode,
            patience=config.patience,
            min_delta=config.min_delta,
            check_on_train_epoch_end=False,  # decide after each dev evaluation
        )
        self.restorer = RestoreBestWeights(config.monitor, mode, config.min_delta)

    def callbacks(self) -> list[pl.Callback]:
        return [self.restorer, self.stopper]

    def key_figures(self, trainer: pl.Trainer) -> dict[str, float]:
        # stopped_step equals trainer.max_steps when patience never ran out
        return {"best_step": self.restorer.best_step, "stopped_step": trainer.global_step}


def build(recipe: RecipeConfig) -> list[Regularizer]:
    """The regularizers a recipe asks for (dropout lives in the network itself)."""
    regularizers: list[Regularizer] = []
    if recipe.l2 is not None:
        regularizers.append(L2(recipe.l2))
    if recipe.early_stopping is not None:
        regularizers.append(EarlyStopping(recipe.early_stopping))
    return regularizers
