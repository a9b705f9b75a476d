"""K multilayer perceptrons of one architecture as one module: every weight
matrix is stacked to (K, out, in), so one batched matrix product runs all K.

The techniques of the recipe shape the layers (dropout, batch norm); each
network has its own initialization, drawn from its own seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pipeline.config import ModelConfig
from pipeline.engine import kernels
from pipeline.techniques import Batch, Technique
from pipeline.techniques.dropout import StackedDropout

# torch's own sigmoid rounds by position in the tensor (see kernels); the others do not.
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": kernels.StackedSigmoid, "leaky_relu": nn.LeakyReLU,
               "linear": nn.Identity}


def as_tensors(X, y, dtype: torch.dtype = torch.float32,
               device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies, never views of numpy's memory: torch's own allocations start on
    64-byte boundaries, which the matrix products' rounding depends on (kernels)."""
    return torch.tensor(X, dtype=dtype, device=device), torch.tensor(y, dtype=torch.long, device=device)


class StackedLinear(nn.Module):
    """K linear layers: (K, m, in) -> (K, m, out). Weights are stored (K, in,
    out), as the papers write W, so a neuron's incoming weights are a column;
    biases (K, 1, out), ready to broadcast over the m examples."""

    def __init__(self, k: int, fan_in: int, fan_out: int, dtype: torch.dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, fan_in, fan_out, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(k, 1, fan_out, dtype=dtype))
        # A layer with one output (or one input) is a product and a sum: BLAS
        # computes a lone matrix-vector product (K = 1) with other roundings than
        # a batch of them, and a network's result must not depend on K.
        self.elementwise = fan_out == 1 or fan_in == 1

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.elementwise:
            if kernels.aligned_already(h, self.weight):
                return torch.baddbmm(self.bias, h, self.weight)
            return kernels.StackedAffine.apply(h, self.weight, self.bias)
        if self.weight.shape[2] == 1:
            return (h * self.weight.transpose(1, 2)).sum(-1, keepdim=True) + self.bias
        return h * self.weight + self.bias


class StackedNetwork(nn.Sequential):
    """[input dropout] then, per hidden layer, linear -> [batch norm] ->
    activation [-> batch norm] [-> dropout]; then a linear output.

    Input (m, features), shared by all K, or (K, m, features); output (K, m,
    logits). Two classes get one output unit (a logit, sigmoid at prediction
    time), more classes one logit per class (softmax).
    """

    def __init__(self, batch: Batch, n_classes: int, model: ModelConfig, techniques: list[Technique]):
        def added(position: str, index: int, units: int) -> list[nn.Module]:
            return [layer for t in techniques if (layer := t.layer(position, index, units)) is not None]

        layers = added("input", -1, batch.n_features)
        sizes = [batch.n_features, *batch.hidden]
        for index, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            layers += [StackedLinear(batch.k, fan_in, fan_out, batch.dtype),
                       *added("before_activation", index, fan_out), ACTIVATIONS[model.activation](),
                       *added("after_activation", index, fan_out)]
        layers.append(StackedLinear(batch.k, sizes[-1], 1 if n_classes == 2 else n_classes, batch.dtype))
        super().__init__(*layers)
        self.layers = tuple(layers)
        self.k, self.n_classes, self.dtype = batch.k, n_classes, batch.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.k, *x.shape)
        # Each layer's forward directly: Module.__call__'s hook handling costs
        # more than these small layers' arithmetic, and no hooks are set.
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Class indices as the loss takes them: the logits' dtype for two classes, once, not every step."""
        return y.to(self.dtype) if self.n_classes == 2 else y

    def linear_layers(self) -> list[StackedLinear]:
        return [m for m in self if isinstance(m, StackedLinear)]

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per network, (K,): mean cross-entropy of its logits (K, m, ·) against
        class indices, (m,) shared or (K, m)."""
        k, m, outputs = logits.shape
        y = y.expand(k, m)
        if self.n_classes == 2:
            losses = kernels.binary_cross_entropy_with_logits(logits[..., 0], y.to(logits.dtype))
        else:
            losses = nn.functional.cross_entropy(logits.reshape(k * m, outputs), y.reshape(-1), reduction="none")
        return kernels.row_means(losses.view(k, m))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class indices (K, m) from logits: threshold 0.5 (logit 0) or argmax."""
        if self.n_classes == 2:
            return (logits[..., 0] > 0).long()
        return logits.argmax(-1)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (K, m, classes); for two classes column 1 is P(class 1)."""
        logits = self(x)
        if self.n_classes == 2:
            p = kernels.sigmoid(logits)
            return torch.cat([1 - p, p], dim=-1)
        return torch.softmax(logits, dim=-1)

    def log_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities (..., classes) from logits (..., outputs), in
        float64: a confident network's 1 - p is 0 in float32, its log is not."""
        logits = logits.double()
        if self.n_classes == 2:
            return torch.cat([nn.functional.logsigmoid(-logits), nn.functional.logsigmoid(logits)], dim=-1)
        return torch.log_softmax(logits, dim=-1)

    @torch.no_grad()
    def evaluated(self, x: torch.Tensor, rows: int = 8192) -> torch.Tensor:
        """Logits (K, m, ·) of x in evaluation mode, rows at a time: a test set
        of 50 000 points for a path's hundred networks would otherwise hold
        gigabytes of activations. The blocks are the same for any K, so each
        network's logits are too."""
        was_training = self.training
        self.eval()
        logits = torch.cat([self(x[start:start + rows]) for start in range(0, len(x), rows)], dim=1)
        self.train(was_training)
        return logits

    @torch.no_grad()
    def sampled_logits(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """Monte Carlo dropout: logits (samples, K, m, ·) of x, each sample with
        fresh dropout masks, in evaluation mode otherwise (batch norm uses its
        running statistics). Masks come from each network's own streams,
        restarted at every call: the same call gives the same logits, whatever
        the batch-mates."""
        dropouts = [layer for layer in self.layers if isinstance(layer, StackedDropout)]
        was_training = self.training
        self.eval()
        for layer in dropouts:
            layer.start_sampling()
        try:
            return torch.stack([self(x) for _ in range(samples)])
        finally:
            for layer in dropouts:
                layer.stop_sampling()
            self.train(was_training)

    @torch.no_grad()
    def measure(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per network, (K,): mean loss and accuracy (a fraction) on (x, y), in evaluation mode."""
        logits = self.evaluated(x)
        return {"loss": self.loss(logits, y), "accuracy": (self.predict(logits) == y).double().mean(1)}


@torch.no_grad()
def initialize(net: StackedNetwork, batch: Batch, scheme: str, numpy_seed: int | None = None) -> None:
    """Weights drawn from N(0, 1/d) with d set by the scheme, each network from
    its own seed's stream; biases zero. With numpy_seed, every network gets the
    course notebooks' draws exactly: np.random.seed(numpy_seed), then
    randn(fan_out, fan_in) / sqrt(d) per layer."""
    streams = batch.streams("init")
    rng = np.random.RandomState(numpy_seed) if numpy_seed is not None else None
    for layer in net.linear_layers():
        k, fan_in, fan_out = layer.weight.shape
        variance_denominator = {"he": fan_in / 2, "xavier": (fan_in + fan_out) / 2, "randn_sqrt_fan_in": fan_in}[scheme]
        if rng is not None:  # the notebooks' W is (out, in)
            layer.weight.copy_(torch.from_numpy(rng.randn(fan_out, fan_in).T / np.sqrt(variance_denominator)))
        else:
            std = math.sqrt(1 / variance_denominator)
            layer.weight.copy_(streams.draw(lambda g: torch.empty(fan_in, fan_out, dtype=batch.dtype).normal_(
                0.0, std, generator=g)))
        layer.bias.zero_()


def make_network(batch: Batch, n_classes: int, model: ModelConfig, recipes: list) -> tuple[StackedNetwork, list]:
    """K initialized networks of the model's architecture shaped by the recipes
    (one per network, sharing their techniques), and those techniques."""
    from pipeline.techniques import build

    techniques = build(recipes, batch)
    net = StackedNetwork(batch, n_classes, model, techniques).to(batch.device)
    initialize(net, batch, model.init, model.numpy_init_seed)
    return net, techniques


class Probabilities(nn.Module):
    """One network as MLflow serves it: (n, features) -> class probabilities (n, classes)."""

    def __init__(self, net: StackedNetwork):
        super().__init__()
        if net.k != 1:
            raise ValueError(f"serve one network at a time, not {net.k}")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.predict_proba(x)[0]
