"""The network: a multilayer perceptron whose layers the recipe shapes
(batch normalization and dropout around hidden activations), and its initialization."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.config import ModelConfig, RecipeConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def as_tensors(X, y, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=torch.long)


class InvertedDropout(nn.Dropout):
    """torch's dropout, which is inverted dropout (kept units scaled by
    1/keep_prob at train time, the identity in eval mode), plus a fixed mask
    that MLP sets for the course notebook's behaviour."""

    def __init__(self, keep_prob: float, units: int):
        super().__init__(p=1 - keep_prob)
        self.keep_prob, self.units = keep_prob, units
        self.fixed_mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.fixed_mask is not None:
            return x * self.fixed_mask / self.keep_prob  # (x * mask) / keep, the notebook's order
        return super().forward(x)


class MLP(nn.Sequential):
    """[input dropout] then, per hidden layer, linear -> [batch norm] ->
    activation [-> batch norm] [-> dropout]; then a linear output.

    Two classes get one output unit (a logit, sigmoid at prediction time), more
    classes one logit per class (softmax).
    """

    def __init__(self, n_features: int, n_classes: int, model: ModelConfig, recipe: RecipeConfig,
                 dtype: torch.dtype = torch.float32):
        dropout, batch_norm = recipe.dropout, recipe.batch_norm
        keep_prob = dropout.keep_prob if dropout else [1.0] * len(model.hidden)
        layers: list[nn.Module] = []
        if dropout and dropout.input_keep_prob < 1:
            layers.append(InvertedDropout(dropout.input_keep_prob, n_features))
        sizes = [n_features, *model.hidden]
        for fan_in, fan_out, keep in zip(sizes, sizes[1:], keep_prob):
            normalize = [nn.BatchNorm1d(fan_out, momentum=batch_norm.momentum, dtype=dtype)] if batch_norm else []
            activate = [ACTIVATIONS[model.activation]()]
            after = batch_norm is not None and batch_norm.position == "after_activation"
            linear = nn.Linear(fan_in, fan_out, dtype=dtype)
            layers += [linear, *(activate + normalize if after else normalize + activate)]
            if keep < 1:
                layers.append(InvertedDropout(keep, fan_out))
        layers.append(nn.Linear(sizes[-1], 1 if n_classes == 2 else n_classes, dtype=dtype))
        super().__init__(*layers)
        self.n_classes = n_classes
        self.fixed_mask_seed = dropout.fixed_seed if dropout and dropout.mask == "fixed" else None
        self._masks_for: int | None = None
        initialize(self, model.init, model.numpy_init_seed)

    @property
    def dtype(self) -> torch.dtype:
        return self[-1].weight.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.fixed_mask_seed is not None:
            self._set_fixed_masks(len(x))
        return super().forward(x)

    def _set_fixed_masks(self, m: int) -> None:
        """The course notebook reseeds numpy before every forward pass and draws
        np.random.rand(units, m) < keep_prob per layer, in layer order: the same
        masks every step. Drawing them once per batch size is equivalent."""
        if self._masks_for == m:
            return
        rng = np.random.RandomState(self.fixed_mask_seed)
        for layer in self.dropout_layers():
            mask = rng.rand(layer.units, m) < layer.keep_prob  # units x examples, as the notebook
            layer.fixed_mask = torch.as_tensor(mask.T)  # bool: x * mask is x or 0, exactly
        self._masks_for = m

    def dropout_layers(self) -> list[InvertedDropout]:
        return [m for m in self if isinstance(m, InvertedDropout)]

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of logits against class indices."""
        if self.n_classes == 2:
            return nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y.to(logits.dtype))
        return nn.functional.cross_entropy(logits, y)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, (n, k); for two classes column 1 is P(class 1)."""
        logits = self(x)
        if self.n_classes == 2:
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(logits, dim=1)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class indices from logits: threshold 0.5 (logit 0) or argmax."""
        if self.n_classes == 2:
            return (logits.squeeze(1) > 0).long()
        return logits.argmax(dim=1)

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)]


class Probabilities(nn.Module):
    """The network as MLflow serves it: class probabilities, not logits."""

    def __init__(self, net: MLP):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.predict_proba(x)


def initialize(net: MLP, scheme: str, numpy_seed: int | None = None) -> None:
    """Weights drawn from N(0, 1/d) with d set by the scheme; biases zero.
    With numpy_seed, the draws are the course notebooks' exactly:
    np.random.seed(numpy_seed), then randn(fan_out, fan_in) / sqrt(d) per layer."""
    rng = np.random.RandomState(numpy_seed) if numpy_seed is not None else None
    for layer in net.linear_layers():
        fan_out, fan_in = layer.weight.shape
        variance_denominator = {"he": fan_in / 2, "xavier": (fan_in + fan_out) / 2, "randn_sqrt_fan_in": fan_in}[scheme]
        with torch.no_grad():
            if rng is None:
                layer.weight.normal_(0.0, math.sqrt(1 / variance_denominator))
            else:
                layer.weight.copy_(torch.from_numpy(rng.randn(fan_out, fan_in) / np.sqrt(variance_denominator)))
            layer.bias.zero_()


def save_network(net: MLP, n_features: int, model: ModelConfig, recipe: RecipeConfig, target) -> None:
    """Weights plus what it takes to rebuild the network (loadable with weights_only)."""
    from pipeline.atomic import atomic_path

    checkpoint = {
        "state_dict": net.state_dict(),
        "n_features": n_features,
        "n_classes": net.n_classes,
        "model": model.model_dump(mode="json"),
        "regularization": recipe.model_dump(mode="json"),
        "dtype": str(net.dtype).removeprefix("torch."),
    }
    with atomic_path(target) as tmp:
        torch.save(checkpoint, tmp)


def load_network(path) -> MLP:
    from pipeline.errors import PipelineError

    try:
        checkpoint = torch.load(path, weights_only=True)
        net = MLP(
            checkpoint["n_features"],
            checkpoint["n_classes"],
            ModelConfig.model_validate(checkpoint["model"]),
            RecipeConfig.model_validate(checkpoint["regularization"]),
            getattr(torch, checkpoint["dtype"]),
        )
        net.load_state_dict(checkpoint["state_dict"])
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run the train stage (dvc repro)") from None
    except Exception as error:  # truncated file, wrong format, mismatched weights
        raise PipelineError(f"{path} is not a loadable model ({type(error).__name__}): rerun the train stage") from None
    return net.eval()
