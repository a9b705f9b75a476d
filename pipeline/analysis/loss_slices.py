"""Loss landscapes of trained networks as Li et al. (2018, "Visualizing the
Loss Landscape of Neural Nets") draw them: the loss along random directions
through the trained weights, each direction filter-normalized (every
neuron's incoming weights scaled to the norm of the trained neuron's), so
that slices of networks whose weights differ in scale (as regularization
makes them) compare.

The engine evaluates a slice batched: each grid point is a network of the
stack, so a 41 x 41 slice is 1 681 networks, and each network's loss is the
one it would have alone (kernels)."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.network import StackedNetwork, as_tensors

PARTS = ("train", "dev")
# Networks x examples x widest layer, in values, that one evaluation holds: the
# grid's networks go through in chunks whose activations stay in the CPU's
# cache. All 1 681 networks of the default slice at once (38 M values per
# activation) took 3.5 times as long, bound by memory, not arithmetic.
ACTIVATION_BUDGET = 1_000_000


@torch.no_grad()
def filter_normalized_directions(net: StackedNetwork, k: int, count: int, seed: int) -> list[list[torch.Tensor]]:
    """count directions for network k, each a tensor (in, out) per linear
    layer, drawn from N(0, 1) by a generator seeded by seed alone (so the
    same for any stack holding the network), each column then scaled to
    the norm of the same column of network k's weight; a zero column stays zero.

    Biases and batch norm's parameters get no direction: they stay at their
    trained values, as in the paper's slices."""
    generator = torch.Generator().manual_seed(seed)
    weights = [layer.weight[k] for layer in net.linear_layers()]
    directions = []
    for _ in range(count):
        drawn = [torch.randn(w.shape, generator=generator, dtype=w.dtype) for w in weights]
        directions.append([d * (w.norm(dim=0) / d.norm(dim=0)) for d, w in zip(drawn, weights)])
    return directions


@torch.no_grad()
def slice_networks(trained: Trained, k: int, directions: list[list[torch.Tensor]],
                   coordinates: np.ndarray) -> StackedNetwork:
    """One network per row of coordinates (P, count): network k with
    sum_j coordinates[p, j] * directions[j] added to its weights."""
    net = trained.subset([k] * len(coordinates))
    steps = torch.as_tensor(coordinates, dtype=net.dtype)[:, :, None, None]  # (P, count, 1, 1)
    for index, layer in enumerate(net.linear_layers()):
        along = torch.stack([direction[index] for direction in directions])  # (count, in, out)
        layer.weight.add_((steps * along).sum(1))
    return net


def loss_slice(trained: Trained, splits: Splits, k: int, points: int = 41, span: float = 1.0,
               seed: int = 0) -> dict:
    """Network k's train and dev loss and accuracy on the points x points grid
    of (alpha, beta) in [-span, span]^2 along two filter-normalized directions,
    each a list of rows indexed [beta][alpha], as JSON takes it. points is odd,
    so the grid's centre is the trained network itself; its middle row
    (beta = 0) is the 1-D slice along the first direction (line_slice())."""
    if points % 2 == 0:
        raise ValueError(f"points must be odd, so the trained network is the grid's centre (got {points})")
    directions = filter_normalized_directions(trained.net, k, 2, seed)
    alphas = np.linspace(-span, span, points)
    alpha, beta = np.meshgrid(alphas, alphas)  # [beta, alpha], as the result is indexed
    coordinates = np.stack([alpha.ravel(), beta.ravel()], 1)
    data = {part: as_tensors(splits.X[part], splits.y[part], trained.net.dtype) for part in PARTS
            if len(splits.y[part])}  # no dev set (the football preset): the train slice alone
    examples = max(len(y) for _, y in data.values())
    widest = max(layer.weight.shape[2] for layer in trained.net.linear_layers())
    chunk = max(1, ACTIVATION_BUDGET // (examples * widest))
    measured: dict[str, list[dict[str, torch.Tensor]]] = {part: [] for part in data}
    for start in range(0, len(coordinates), chunk):
        net = slice_networks(trained, k, directions, coordinates[start:start + chunk])
        for part, (x, y) in data.items():
            measured[part].append(net.measure(x, y))
    return {
        "alphas": alphas.tolist(),
        **{part: {name: torch.cat([m[name] for m in measured[part]]).reshape(points, points).tolist()
                  for name in ("loss", "accuracy")} for part in data},
        "direction_seed": seed,
        "span": span,
    }


def line_slice(result: dict, part: str, name: str = "loss") -> np.ndarray:
    """The 1-D slice along the first direction of a loss_slice result: its grid's middle row (beta = 0)."""
    values = np.asarray(result[part][name])
    return values[len(values) // 2]
