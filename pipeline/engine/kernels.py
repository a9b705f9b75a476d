"""The arithmetic of the K networks, written so that a value's result never
depends on where it sits in a tensor, and so a network's training never
depends on its batch-mates.

PyTorch's CPU kernels compute most of a tensor with vector code and its
trailing elements (past the last full vector, or the end of each thread's
chunk) with scalar code. For most ops the two round alike; for `sigmoid`,
`softplus` (so `binary_cross_entropy_with_logits`' gradient) and batch norm's
per-channel gradient they do not, so which network's values fall in the
tail, and so its result, depended on K and on its place in the batch.
Here those ops are made of ones that round alike in both paths (exp, log1p,
+, -, *, /, sqrt, max, and reductions along one network's own rows);
tests/engine/test_kernels.py holds every op the engine calls to that.
"""

from __future__ import annotations

import collections
import functools

import torch

# A reduction to one value over more elements than this is split between
# threads (PyTorch's GRAIN_SIZE), which sums in another order than one thread.
_PARALLEL_REDUCTION = 32768


def _sigmoid(z: torch.Tensor) -> torch.Tensor:
    # exp(-z) may overflow to inf for z below about -88 (float32): 1/inf is the exact 0.
    return torch.exp(-z).add_(1).reciprocal_()


class Sigmoid(torch.autograd.Function):
    """1 / (1 + exp(-z)), with the gradient y (1 - y): the chain rule through
    exp would give 0 * inf = NaN where exp(-z) overflows."""

    @staticmethod
    def forward(ctx, z):
        y = _sigmoid(z)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1 - y)


class BinaryCrossEntropyWithLogits(torch.autograd.Function):
    """Per element, -y log s(z) - (1 - y) log(1 - s(z)) = max(z, 0) - z y + log1p(exp(-|z|)),
    stable for any z; the gradient s(z) - y."""

    @staticmethod
    def forward(ctx, z, y):
        ctx.save_for_backward(z, y)
        return z.clamp_min(0) - z * y + torch.log1p(torch.exp(-z.abs()))

    @staticmethod
    def backward(ctx, grad):
        z, y = ctx.saved_tensors
        return grad * (_sigmoid(z) - y), None


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    return Sigmoid.apply(z)


def binary_cross_entropy_with_logits(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return BinaryCrossEntropyWithLogits.apply(z, y)


class StackedSigmoid(torch.nn.Module):
    """The sigmoid activation, as nn.Sigmoid computes it but position-independent."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return sigmoid(z)


def row_means(values: torch.Tensor) -> torch.Tensor:
    """(K, m) -> (K,): each network's mean of its own row. One row of more
    than 32 768 values would be reduced by two threads, in another order than
    a row among several; two copies of it are reduced as any row is."""
    k, m = values.shape
    if k == 1 and m > _PARALLEL_REDUCTION:
        return values.expand(2, m).mean(1)[:1]
    return values.mean(1)


# --- matrix products ---------------------------------------------------------
# MKL's batched product rounds a network's matrices by their memory alignment:
# where every network's block of every operand and of the result starts on a
# 64-byte boundary, all networks of any batch of two or more get the same bits
# (tests/engine/test_kernels.py); where a block is, say, 211 x 3 floats, the
# networks at odd places round differently. A single product (K = 1) goes to
# another MKL routine, which rounds some shapes differently again.
_ALIGNMENT = 64  # bytes; torch's CPU allocations start on such a boundary


def _by_columns(t: torch.Tensor) -> bool:
    return t.stride(1) == 1 and t.stride(2) >= t.shape[1]


def _lined_up(t: torch.Tensor) -> bool:
    """Each (r, c) matrix of t starts on a 64-byte boundary and is stored by
    rows or by columns (a copy keeps which: MKL's routine depends on it)."""
    return (((t.stride(2) == 1 and t.stride(1) >= t.shape[2]) or _by_columns(t))
            and t.data_ptr() % _ALIGNMENT == 0
            and (t.shape[0] == 1 or t.stride(0) * t.element_size() % _ALIGNMENT == 0))


# Aligned buffers to copy operands into, kept between steps: allocating them
# for every product cost more than the product. What a buffer holds beyond
# the operand copied in (a wider shape's extra rows or columns) only reaches
# the rows or columns of the result that are cut off.
_buffers: collections.OrderedDict[tuple, torch.Tensor] = collections.OrderedDict()
_KEPT_BUFFERS = 32


def _buffer(role: str, k: int, r: int, c: int, by_columns: bool, like: torch.Tensor) -> torch.Tensor:
    """A (k, r, c) tensor whose matrices start on 64-byte boundaries, stored
    by columns or by rows; one per role and shape."""
    key = (role, k, r, c, by_columns, like.dtype, like.device)
    if (buffer := _buffers.get(key)) is not None:
        _buffers.move_to_end(key)
        return buffer
    rows, columns = (c, r) if by_columns else (r, c)
    per = _ALIGNMENT // like.element_size()
    storage = torch.zeros(k, -(-rows * columns // per) * per, dtype=like.dtype, device=like.device)
    buffer = storage[:, :rows * columns].view(k, rows, columns)
    _buffers[key] = buffer.transpose(1, 2) if by_columns else buffer
    if len(_buffers) > _KEPT_BUFFERS:
        _buffers.popitem(last=False)
    return _buffers[key]


def _operand(t: torch.Tensor, role: str, widen: tuple[int, int] | None = None) -> torch.Tensor:
    """t as MKL must see it: in aligned blocks (a copy, stored by rows or by
    columns as t is, since MKL's routine depends on that too), and widened
    along dim to size if widen = (dim, size). A matrix all networks share
    (stride 0) is copied once."""
    if widen is None and _lined_up(t):
        return t
    k = t.shape[0]
    source = t[:1] if t.stride(0) == 0 else t
    shape = list(source.shape)
    if widen is not None:
        shape[widen[0]] = widen[1]
    buffer = _buffer(role, *shape, _by_columns(t), like=t)
    buffer[:, :t.shape[1], :t.shape[2]].copy_(source)
    return buffer.expand(k, -1, -1) if source is not t else buffer


@functools.lru_cache(maxsize=None)
def _result_padding(r: int, c: int, n: int, per: int) -> tuple[int, int] | None:
    """(dim, size): where an (r, c) @ (c, n) product's r x n blocks cannot all
    start on a boundary (r n not a multiple of per values), widen b's columns
    (dim 2) or a's rows (dim 1) until they can, whichever copies and computes
    less; the extra columns or rows of the result are cut off."""
    if r * n % per == 0:
        return None
    wider = next(w for w in range(n + 1, n + per + 1) if r * w % per == 0)
    taller = next(t for t in range(r + 1, r + per + 1) if t * n % per == 0)
    return (2, wider) if (c + r) * wider <= taller * (c + n) else (1, taller)


def batched_matmul(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """(K, r, c) @ (K, c, n) [+ bias (K, 1, n)] -> (K, r, n), each network's
    product the same bits whatever K and its place among the K.

    MKL sees every block aligned (see above): operands that are not are
    copied, a result that cannot be is computed wider and cut, and K = 1 is
    the first of a batch of two whose second is a view of the first, so that
    it takes the batched routine too. The default network's shapes need no
    copy."""
    k, r, c = a.shape
    n = b.shape[2]
    padding = _result_padding(r, c, n, _ALIGNMENT // a.element_size())
    widen_b = padding if padding is not None and padding[0] == 2 else None
    a = _operand(a, "a", padding if padding is not None and padding[0] == 1 else None)
    b = _operand(b, "b", widen_b)
    if bias is not None and widen_b is not None:
        bias = _operand(bias, "bias", widen_b)
    if k == 1:
        a, b = a.expand(2, -1, -1), b.expand(2, -1, -1)
        bias = None if bias is None else bias.expand(2, -1, -1)
    product = torch.bmm(a, b) if bias is None else torch.baddbmm(bias, a, b)
    return product[:k, :r, :n]


def aligned_already(h: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether torch's own batched product and its gradients already see
    every block aligned, for two networks or more: then they compute what
    StackedAffine would, without its copies (the default network's case)."""
    k, m, fan_in = h.shape
    fan_out = weight.shape[2]
    per = _ALIGNMENT // h.element_size()
    return (k > 1 and m * fan_in % per == 0 and fan_in * fan_out % per == 0 and m * fan_out % per == 0
            and _lined_up(h) and _lined_up(weight))


class StackedAffine(torch.autograd.Function):
    """h @ W + b for K networks, (K, m, in) -> (K, m, out), with the same
    position-independent products in the backward pass."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        ctx.save_for_backward(h, weight)
        return batched_matmul(h, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        grad_h = batched_matmul(grad, weight.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        grad_weight = batched_matmul(h.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1, keepdim=True) if ctx.needs_input_grad[2] else None
        return grad_h, grad_weight, grad_bias
