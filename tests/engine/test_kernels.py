"""Every op the engine computes gives a value the same bits wherever the value
sits in a tensor: at every offset of tensors of every length, across the point
where PyTorch splits a tensor between threads, for rows among any number of
rows, and for a network's matrices at any place in a batch of any size.

This is what makes a network's training independent of its batch-mates
(tests/engine/test_independence.py trains whole suites to show it). PyTorch's
CPU kernels compute most of a tensor with vector code and the rest with scalar
code; an op passes when both round alike. Some of torch's own ops do not, and
the first test shows that the check catches them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.engine import kernels
from pipeline.engine.module import OPTIMIZERS
from pipeline.engine.network import StackedLinear
from pipeline.techniques.batch_norm import StackedBatchNorm



@pytest.fixture(autouse=True)
def threads(torch_threads):
    """torch's own threads, as users run it, so that long tensors are split between them."""
    return torch_threads


DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
# every length up to a few vectors of 16 floats (AVX-512) and 2 x 16 unrolled,
# then lengths that PyTorch splits between threads (more than 32 768 elements)
LENGTHS = [*range(1, 70), 40_001, 70_003]
PROBE = 9  # values placed at each offset


def values(dtype: torch.dtype, n: int, seed: int = 0) -> torch.Tensor:
    """Values over many magnitudes and both signs, zeros and ties included."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64) * 10 ** torch.empty(n, dtype=torch.float64).uniform_(
        -3, 2, generator=g)
    x[::7] = 0.0
    return x.to(dtype)


def placements(length: int, size: int = PROBE):
    """Offsets at which size values fit into length: all for short tensors,
    for long ones the ends and around the middle, where threads meet."""
    if length < size:
        return []
    last = length - size
    if length < 100:
        return range(last + 1)
    middle = length // 2
    return sorted({0, 1, 13, last, *range(middle - 40, middle + 40)})


def results_at_every_place(op, dtype: torch.dtype, arity: int = 1, gradient: bool = False,
                           probe_size: int = PROBE) -> set[bytes]:
    """The distinct results (as bytes) of op on the same probe values placed at
    every offset of every length; op maps 1-D tensors to a 1-D tensor. With
    gradient, the gradient of sum(op * weights) with respect to the first input."""
    probe = [values(dtype, probe_size, seed) for seed in range(arity)]
    upstream = values(dtype, probe_size, 99)
    seen = set()
    for length in LENGTHS:
        fillers = [values(dtype, length, 10 + seed) for seed in range(arity)]
        for at in placements(length, probe_size):
            inputs = []
            for filler, p in zip(fillers, probe):
                t = filler.clone()
                t[at:at + probe_size] = p
                inputs.append(t.requires_grad_(gradient) if gradient else t)
            out = op(*inputs)
            if gradient:
                weights = torch.zeros_like(out)
                weights[at:at + probe_size] = upstream
                (out,) = torch.autograd.grad(out, inputs[0], weights)
            seen.add(out[at:at + probe_size].detach().numpy().tobytes())
    return seen


def vector_and_scalar_code_agree(op, dtype: torch.dtype, arity: int = 1, gradient: bool = False) -> bool:
    """Many values at once: op on contiguous tensors (vector code) against op
    on every other element of a wider tensor (a stride: scalar code)."""
    n = 4099
    inputs = [values(dtype, n, seed) * 4 for seed in range(arity)]

    def result(strided: bool) -> torch.Tensor:
        leaves, arguments = [], []
        for x in inputs:
            leaf = torch.stack([x, torch.zeros_like(x)], 1) if strided else x.clone()
            leaves.append(leaf.requires_grad_(gradient))
            arguments.append(leaf[:, 0] if strided else leaf)
        out = op(*arguments)
        if not gradient:
            return out
        (grad,) = torch.autograd.grad(out, leaves[0], torch.full_like(out, 0.37))
        return grad[:, 0] if strided else grad

    return result(False).detach().numpy().tobytes() == result(True).detach().numpy().tobytes()


@DTYPES
def test_the_check_catches_torchs_own_sigmoid_and_softplus(dtype):
    # torch.sigmoid and F.softplus round the tail of a tensor differently from its body
    assert not vector_and_scalar_code_agree(torch.sigmoid, dtype)
    assert not vector_and_scalar_code_agree(F.softplus, dtype)
    # and binary_cross_entropy_with_logits' gradient, through sigmoid: the cause of the issue
    bce = lambda z: F.binary_cross_entropy_with_logits(z, _labels(z), reduction="none")  # noqa: E731
    assert not vector_and_scalar_code_agree(bce, dtype, gradient=True)


def _labels(z: torch.Tensor) -> torch.Tensor:
    return (z.detach() > 0.1).to(z.dtype)


ELEMENTWISE = {  # name: (op, arity); each op of a step or an evaluation, forward and gradient
    "relu": (torch.relu, 1),
    "tanh": (torch.tanh, 1),
    "leaky_relu": (F.leaky_relu, 1),
    "sigmoid (kernels)": (kernels.sigmoid, 1),
    "binary cross-entropy (kernels)": (lambda z: kernels.binary_cross_entropy_with_logits(z, _labels(z)), 1),
    "L1 term": (lambda w: w.abs() * 0.37, 1),
    "L2 term": (lambda w: w.square() * 0.37, 1),
    "dropout mask": (lambda u, h: h * u.abs().add(0.3).floor().mul(1 / 0.7), 2),
    "jitter": (lambda x, noise: x + noise * 0.3, 2),
    "max-norm scale": (lambda w, norms: w * torch.clamp(1.5 / norms.abs().clamp_min(1e-12), max=1.0), 2),
    "decoupled decay": (lambda w: w * (1 - 0.02 * 0.005), 1),
    "batch-norm normalization": (lambda h, v: (h - 0.4) * torch.rsqrt(v.abs() + 1e-5) * 1.3 + 0.2, 2),
    "threshold": (lambda z: (z > 0).to(z.dtype), 1),
}


@DTYPES
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_each_elementwise_op_gives_the_same_bits_at_every_offset(name, dtype):
    op, arity = ELEMENTWISE[name]
    assert vector_and_scalar_code_agree(op, dtype, arity)
    assert len(results_at_every_place(op, dtype, arity)) == 1
    if name != "threshold":
        assert vector_and_scalar_code_agree(op, dtype, arity, gradient=True)
        assert len(results_at_every_place(op, dtype, arity, gradient=True)) == 1


def rows_at_every_place(op, probe: torch.Tensor, counts, gradient: bool = False) -> set[bytes]:
    """op maps (n, columns) to (n, ...) row by row; the probe's rows at every
    place among counts of rows give these distinct results."""
    seen = set()
    g = torch.Generator().manual_seed(5)
    for count in counts:
        for at in sorted({0, 1, count - len(probe), (count - len(probe)) // 2}):
            if at < 0 or at + len(probe) > count:
                continue
            t = torch.randn(count, *probe.shape[1:], generator=g, dtype=probe.dtype) * 3
            t[at:at + len(probe)] = probe
            t.requires_grad_(gradient)
            out = op(t)
            if gradient:
                weights = torch.zeros_like(out)
                weights[at:at + len(probe)] = 0.37
                (out,) = torch.autograd.grad(out, t, weights)
            seen.add(out[at:at + len(probe)].detach().numpy().tobytes())
    return seen


@DTYPES
@pytest.mark.parametrize("classes", [3, 10])
def test_the_multi_class_loss_and_probabilities_are_the_same_for_a_row_among_any_rows(classes, dtype):
    probe = torch.randn(17, classes, dtype=dtype, generator=torch.Generator().manual_seed(1)) * 4
    labels = lambda t: t.detach().argmin(1)  # noqa: E731  (from the values, not the place)
    loss = lambda t: F.cross_entropy(t, labels(t), reduction="none")  # noqa: E731
    counts = [17, 18, 33, 64, 101, 1000, 40_000]
    for op in (loss, lambda t: torch.softmax(t, -1), lambda t: t.argmax(-1)):
        assert len(rows_at_every_place(op, probe, counts)) == 1
    for op in (loss, lambda t: torch.softmax(t, -1)):
        assert len(rows_at_every_place(op, probe, counts, gradient=True)) == 1


@DTYPES
@pytest.mark.parametrize("m", [200, 5000, 40_000, 70_000])
def test_a_networks_mean_loss_is_the_same_alone_and_among_many(m, dtype):
    probe = torch.randn(1, m, dtype=dtype, generator=torch.Generator().manual_seed(2))
    counts = [1, 2, 3, 5, 50] if m < 40_000 else [1, 2, 5]
    means = rows_at_every_place(lambda t: kernels.row_means(t).unsqueeze(1), probe, counts)
    assert len(means) == 1


def networks_at_every_place(build, probe_inputs, counts, places=None):
    """build(k) -> a function of (K, ...) inputs returning per-network outputs
    and gradients; the probe network's results at every place among K."""
    seen = set()
    for k in counts:
        for at in places or sorted({0, k - 1, k // 2}):
            inputs = []
            for p in probe_inputs:
                t = torch.randn(k, *p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(k)) * 2
                t[at] = p
                inputs.append(t)
            outputs = build(k)(*inputs)
            seen.add(b"".join(o[at].contiguous().numpy().tobytes() for o in outputs))
    return seen


SHAPES = [(200, 2, 32), (200, 32, 32), (500, 32, 32), (211, 2, 20), (211, 20, 3), (40, 6, 5), (64, 5, 10),
          (128, 500, 10), (300, 10, 3), (211, 3, 1), (200, 32, 1)]
# rows, in, out: the default network's, the presets', odd ones; one output: the elementwise layer


@DTYPES
@pytest.mark.parametrize("rows, fan_in, fan_out", SHAPES)
def test_a_layers_product_and_gradients_are_the_same_at_every_place_in_a_batch(rows, fan_in, fan_out, dtype):
    def build(k):
        layer = StackedLinear(k, fan_in, fan_out, dtype)

        def run(h, weight, bias, upstream):
            with torch.no_grad():
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)
            h = h.requires_grad_()
            out = layer(h)
            grads = torch.autograd.grad(out, (h, layer.weight, layer.bias), upstream)
            return out.detach(), *grads
        return run

    g = torch.Generator().manual_seed(rows + fan_in)
    probe = [torch.randn(rows, fan_in, dtype=dtype, generator=g), torch.randn(fan_in, fan_out, dtype=dtype, generator=g),
             torch.randn(1, fan_out, dtype=dtype, generator=g), torch.randn(rows, fan_out, dtype=dtype, generator=g)]
    assert len(networks_at_every_place(build, probe, [1, 2, 3, 5, 50])) == 1


def test_the_matrix_product_check_catches_mkls_alignment_rounding():
    # torch's own batched product: networks at odd places of a batch of
    # 211 x 20 float64 matrices round differently (MKL's aligned kernels)
    probe = [torch.randn(211, 20, dtype=torch.float64), torch.randn(20, 3, dtype=torch.float64)]
    assert len(networks_at_every_place(lambda k: lambda h, w: (torch.bmm(h, w),), probe, [2, 5, 50],
                                       places=[0, 1])) > 1


@DTYPES
@pytest.mark.parametrize("units", [32, 20, 5])
def test_batch_norm_gives_a_network_the_same_bits_at_every_place(units, dtype):
    def build(k):
        norm = StackedBatchNorm(k, units, momentum=0.1, dtype=dtype)

        def run(h, upstream):
            h = h.requires_grad_()
            out = norm(h)
            grads = torch.autograd.grad(out, (h, norm.weight, norm.bias), upstream)
            norm.eval()
            with torch.no_grad():
                evaluated = norm(h)
            return out.detach(), *grads, norm.running_mean, norm.running_var, evaluated
        return run

    probe = [torch.randn(211, units, dtype=dtype) * 3 + 1, torch.randn(211, units, dtype=dtype)]
    assert len(networks_at_every_place(build, probe, [1, 2, 3, 5, 50])) == 1


@DTYPES
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_an_optimizer_step_is_the_same_at_every_offset(optimizer, dtype):
    """Twenty steps with gradients of many magnitudes; the fused Adam kernel
    fails this (it rounds a tensor's tail differently)."""
    steps = 20

    def op(weights, *gradients):
        parameter = torch.nn.Parameter(weights.detach().clone())
        step = OPTIMIZERS[optimizer]([parameter], lr=0.02)
        for gradient in gradients:
            parameter.grad = gradient.detach().clone()
            step.step()
        return parameter.detach()

    assert len(results_at_every_place(op, dtype, arity=1 + steps, probe_size=40)) == 1
    if optimizer == "adam":  # the check can fail: torch's fused Adam kernel fails it
        fused = lambda w, *g: _fused_adam(w, g)  # noqa: E731
        assert len(results_at_every_place(fused, dtype, arity=1 + steps, probe_size=40)) > 1


def _fused_adam(weights, gradients):
    parameter = torch.nn.Parameter(weights.detach().clone())
    step = torch.optim.Adam([parameter], lr=0.02, fused=True)
    for gradient in gradients:
        parameter.grad = gradient.detach().clone()
        step.step()
    return parameter.detach()


@DTYPES
def test_per_network_weight_statistics_are_the_same_at_every_place(dtype):
    """The penalties' sums and max-norm's column norms reduce each network's own matrix."""
    def build(k):
        return lambda w: (w.square().sum((1, 2)).view(k, 1), w.abs().sum((1, 2)).view(k, 1),
                          w.norm(dim=1, keepdim=True))
    for shape in [(2, 32), (32, 32), (20, 3), (6, 5)]:
        probe = [torch.randn(*shape, dtype=dtype)]
        assert len(networks_at_every_place(build, probe, [1, 2, 3, 5, 50, 250])) == 1


def test_the_sigmoid_and_loss_are_what_torch_computes_to_rounding():
    z = torch.linspace(-120, 120, 100_001, dtype=torch.float64)
    y = (torch.arange(len(z)) % 2).double()
    torch.testing.assert_close(kernels.sigmoid(z), torch.sigmoid(z), rtol=1e-15, atol=1e-300)
    torch.testing.assert_close(kernels.binary_cross_entropy_with_logits(z, y),
                               F.binary_cross_entropy_with_logits(z, y, reduction="none"), rtol=1e-14, atol=1e-14)
    zz = z.clone().requires_grad_()
    (grad,) = torch.autograd.grad(kernels.binary_cross_entropy_with_logits(zz, y).sum(), zz)
    torch.testing.assert_close(grad, torch.sigmoid(z) - y, rtol=1e-15, atol=1e-300)
    for dtype in (torch.float32, torch.float64):  # finite far out, where exp(-z) overflows
        far = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype, requires_grad=True)
        out = kernels.sigmoid(far)
        (grad,) = torch.autograd.grad(out.sum(), far)
        assert torch.isfinite(grad).all() and out.tolist()[0] == 0.0 and out.tolist()[-1] == 1.0
        assert grad.tolist()[2] == 0.25


def test_batch_norm_matches_torchs_own_to_rounding():
    for dtype, tolerance in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        h = torch.randn(3, 64, 20, dtype=dtype) * 2 + 1
        ours = StackedBatchNorm(3, 20, momentum=0.3, dtype=dtype)
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.uniform_(-1, 1)
        out = ours(h)
        for k in range(3):
            theirs = torch.nn.BatchNorm1d(20, momentum=0.3, dtype=dtype)
            with torch.no_grad():
                theirs.weight.copy_(ours.weight[k])
                theirs.bias.copy_(ours.bias[k])
            torch.testing.assert_close(out[k], theirs(h[k]), rtol=tolerance, atol=tolerance)
            for name in ("running_mean", "running_var"):
                torch.testing.assert_close(getattr(ours, name)[k], getattr(theirs, name), rtol=tolerance,
                                           atol=tolerance)
            theirs.eval()
            ours.eval()
            torch.testing.assert_close(ours(h)[k], theirs(h[k]), rtol=tolerance, atol=tolerance)
            ours.train()
