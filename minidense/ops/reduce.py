"""Reductions over axes: sum, max, min; mean is sum / n."""

import builtins

from .. import checks
from ..autograd import Function
from ..backend import array_module


def _axes(axis, x, fn, keepdims=False):
    """Check ``x`` and ``keepdims``; normalise ``axis`` (None, int or tuple) to a sorted tuple of
    non-negative axes."""
    checks.tensor(x, fn)
    checks.flag(keepdims, fn, "keepdims")
    ndim = x.ndim
    if axis is None:
        return tuple(range(ndim))
    out = []
    for a in checks.int_tuple(axis, fn, "axis"):
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{fn}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % builtins.max(ndim, 1))
    return tuple(sorted(set(out)))


def _keep(g, axes, keepdims):
    """Reinsert reduced axes as size 1 so ``g`` broadcasts against the input."""
    if keepdims:
        return g
    shape = list(g.shape)
    for a in axes:
        shape.insert(a, 1)
    return g.reshape(shape)


class Sum(Function):
    """d Σx = 1 for every element"""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.meta = x.shape, axes, keepdims
        return array_module(x).sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdims = ctx.meta
        return array_module(g).broadcast_to(_keep(g, axes, keepdims), shape), None, None


class Extremum(Function):
    """max / min: the gradient is shared equally among the elements that tie for the extremum"""

    @staticmethod
    def forward(ctx, x, axes, keepdims, op):
        xp = array_module(x)
        m = getattr(xp, op)(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, m)
        ctx.meta = axes, keepdims
        return m if keepdims else m.reshape([n for i, n in enumerate(m.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        x, m = ctx.saved_tensors
        axes, keepdims = ctx.meta
        hit = (x == m).astype(g.dtype)
        return (
            hit * (_keep(g, axes, keepdims) / hit.sum(axis=axes, keepdims=True)),
            None,
            None,
            None,
        )


def _check_nonempty(x, axes, what):
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{what} over an empty axis of a tensor with shape {x.shape}")


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (None: all axes)."""
    return Sum.apply(x, _axes(axis, x, "sum", keepdims), keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis``; composite: sum / n."""
    axes = _axes(axis, x, "mean", keepdims)
    n = 1
    for a in axes:
        n *= x.shape[a]
    return sum(x, axes, keepdims) / n


def max(x, axis=None, keepdims=False):
    """Maximum over ``axis``."""
    axes = _axes(axis, x, "max", keepdims)
    _check_nonempty(x, axes, "max")
    return Extremum.apply(x, axes, keepdims, "max")


def min(x, axis=None, keepdims=False):
    """Minimum over ``axis``."""
    axes = _axes(axis, x, "min", keepdims)
    _check_nonempty(x, axes, "min")
    return Extremum.apply(x, axes, keepdims, "min")
