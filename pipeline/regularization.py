"""Regularization techniques as small composable pieces.

A recipe (conf/regularization/*.yaml composed by conf/suite/*.yaml) names the
techniques it uses; build() turns each into a Regularizer. The training loop
asks every regularizer for its penalty term, its weight decay, its input
augmentation, its projection after each optimizer step, its Lightning
callbacks and its key figures. Architectural techniques (dropout, batch
normalization) shape the network in pipeline.model instead.
"""

from __future__ import annotations

import copy
import math

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping as LightningEarlyStopping

from pipeline.config import (
    AugmentationConfig,
    EarlyStoppingConfig,
    ElasticNetConfig,
    L1Config,
    L2Config,
    MaxNormConfig,
    RecipeConfig,
)
from pipeline.errors import PipelineError
from pipeline.model import MLP


class Regularizer:
    """The hooks a technique may use; each default does nothing."""

    def penalty(self, net: MLP, n_train: int) -> torch.Tensor | None:
        """A term added to the mean data loss of every step."""
        return None

    def weight_decay(self, net: MLP, n_train: int) -> dict[torch.nn.Parameter, float]:
        """Decoupled decay coefficients the optimizer applies to parameters."""
        return {}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """A perturbed copy of a training batch (never applied to evaluation data)."""
        return x

    def after_optimizer_step(self, net: MLP) -> None:
        """A constraint applied to the weights after every optimizer step."""

    def callbacks(self) -> list[pl.Callback]:
        return []

    def key_figures(self, trainer: pl.Trainer) -> dict[str, float]:
        """Numbers that show what the technique did, for MLflow and the report."""
        return {}


def layer_parameters(net: MLP, include_bias: bool) -> list[list[torch.nn.Parameter]]:
    """The penalized parameters of each weight matrix's layer, input to output."""
    return [[layer.weight, layer.bias] if include_bias else [layer.weight] for layer in net.linear_layers()]


def total(terms: list[torch.Tensor | None]) -> torch.Tensor | None:
    present = [t for t in terms if t is not None]
    return sum(present) if present else None


def l1_term(net: MLP, strengths: list[float], include_bias: bool, n_train: int) -> torch.Tensor | None:
    """sum over layers of strength_l/m * sum |w|."""
    groups = layer_parameters(net, include_bias)
    return total([s / n_train * sum(p.abs().sum() for p in ps) for s, ps in zip(strengths, groups) if s])


def l2_term(net: MLP, strengths: list[float], include_bias: bool, n_train: int) -> torch.Tensor | None:
    """sum over layers of strength_l/(2m) * sum w^2, whose gradient is strength_l/m * w."""
    groups = layer_parameters(net, include_bias)
    return total([s / (2 * n_train) * sum(p.pow(2).sum() for p in ps) for s, ps in zip(strengths, groups) if s])


class L1(Regularizer):
    def __init__(self, config: L1Config):
        self.config = config

    def penalty(self, net, n_train):
        strengths = self.config.strengths(len(net.linear_layers()))
        return l1_term(net, strengths, self.config.regularize_bias, n_train)


class L2(Regularizer):
    """As a penalty in the cost (the course's convention), or as decoupled
    weight decay: the optimizer shrinks each weight by lr * strength/m * w per
    step outside its gradient. For plain SGD the two are the same update; for
    Adam they differ, since Adam rescales the penalty's gradient per weight and
    decoupled decay (AdamW) does not."""

    def __init__(self, config: L2Config):
        self.config = config

    def _strengths(self, net):
        return self.config.strengths(len(net.linear_layers()))

    def penalty(self, net, n_train):
        if self.config.mode != "penalty":
            return None
        return l2_term(net, self._strengths(net), self.config.regularize_bias, n_train)

    def weight_decay(self, net, n_train):
        if self.config.mode != "decoupled":
            return {}
        groups = layer_parameters(net, self.config.regularize_bias)
        return {p: s / n_train for s, ps in zip(self._strengths(net), groups) for p in ps}


class ElasticNet(Regularizer):
    def __init__(self, config: ElasticNetConfig):
        self.config = config

    def penalty(self, net, n_train):
        n, bias = len(net.linear_layers()), self.config.regularize_bias
        return total([
            l1_term(net, [self.config.l1_strength] * n, bias, n_train),
            l2_term(net, [self.config.l2_strength] * n, bias, n_train),
        ])


class MaxNorm(Regularizer):
    """After every optimizer step, scale each neuron's incoming weight vector
    (a row of torch's out x in weight matrix) back to norm c if it is longer;
    vectors already within the bound are left exactly as they are."""

    def __init__(self, config: MaxNormConfig):
        self.c = config.c

    @torch.no_grad()
    def after_optimizer_step(self, net):
        for layer in net.linear_layers():
            norms = layer.weight.norm(dim=1, keepdim=True)
            layer.weight.mul_(torch.clamp(self.c / norms.clamp_min(1e-12), max=1.0))


class Augmentation(Regularizer):
    """Gaussian jitter of every input feature; for images (the data set says
    their shape) also random shifts and rotations."""

    def __init__(self, config: AugmentationConfig, image_shape: tuple[int, int] | None, seed: int):
        self.config = config
        self.generator = torch.Generator().manual_seed(seed)
        self.image_shape = image_shape
        if (config.max_shift or config.max_rotation) and image_shape is None:
            raise PipelineError(
                "augmentation.max_shift and max_rotation need an image data set (digits, mnist5k, mnist); "
                "use augmentation.jitter_std for points"
            )

    def augment(self, x):
        if self.config.jitter_std:
            x = x + self.config.jitter_std * torch.randn(x.shape, generator=self.generator)
        if self.config.max_shift or self.config.max_rotation:
            x = self._shift_and_rotate(x)
        return x

    def _shift_and_rotate(self, x: torch.Tensor) -> torch.Tensor:
        n, (rows, columns) = len(x), self.image_shape
        angle = (torch.rand(n, generator=self.generator) * 2 - 1) * math.radians(self.config.max_rotation)
        shift = torch.randint(-self.config.max_shift, self.config.max_shift + 1, (n, 2), generator=self.generator)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid works in [-1, 1] coordinates: one pixel is 2/columns across, 2/rows down
        theta = torch.stack([torch.stack([cos, -sin, -2 * shift[:, 0] / columns], 1),
                             torch.stack([sin, cos, -2 * shift[:, 1] / rows], 1)], 1).to(x.dtype)
        images = x.reshape(n, 1, rows, columns)
        grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
        moved = torch.nn.functional.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
        return moved.reshape(n, -1)


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


def build(recipe: RecipeConfig, seed: int, image_shape: tuple[int, int] | None = None) -> list[Regularizer]:
    """The regularizers a recipe asks for (dropout and batch norm live in the network itself)."""
    makers = {
        "l1": L1,
        "l2": L2,
        "elastic_net": ElasticNet,
        "max_norm": MaxNorm,
        "early_stopping": EarlyStopping,
        "augmentation": lambda config: Augmentation(config, image_shape, seed),
    }
    return [make(getattr(recipe, name)) for name, make in makers.items() if getattr(recipe, name) is not None]
