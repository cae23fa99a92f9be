"""Activations and the softmax family, each numerically stable for large |x|."""

import numbers

import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_module
from ..kernels import relu as K


class ReLU(Function):
    """relu(x) = max(x, 0) (NaN stays NaN); the gradient is 1 where x > 0 (0 at x = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.slope = slope
        if not slope and _parallel(x):
            y, pos = K.relu_forward(x)
            ctx.save_for_backward(pos)
            return y
        xp = array_module(x)
        pos = x > 0
        ctx.save_for_backward(pos)
        if slope:
            return xp.where(pos, x, x * slope)
        # maximum, not where(pos, x, 0): 8× faster in NumPy, and NaN stays NaN as in PyTorch.
        return xp.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        (pos,) = ctx.saved_tensors
        if ctx.slope:
            return array_module(g).where(pos, g, g * ctx.slope), None
        if _parallel(g):
            return K.relu_backward(g, pos), None
        # where, not g·pos: a NaN or inf gradient stops at the mask, as in the kernel (NaN·0 = NaN)
        return array_module(g).where(pos, g, g.dtype.type(0)), None


def _parallel(a):
    """Whether ReLU runs as a parallel kernel on ``a``: a large contiguous float host array."""
    return (
        isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size >= K.MIN_SIZE
        and a.flags.c_contiguous
    )  # fmt: skip


class Unary(Function):
    """A unary op ``y = f(x)`` whose backward needs one array: ``chain(g, y)`` = g·dy/dx when
    the derivative is written in the output (``saves = "output"``: sigmoid, tanh, exp, sqrt; the
    op keeps y, not x), ``chain(g, x)`` when in the input (``saves = "input"``: log, abs).
    A subclass gives ``f``, ``chain`` and ``saves``."""

    saves = "output"

    @classmethod
    def forward(cls, ctx, x):
        y = cls.f(x)
        ctx.save_for_backward(y if cls.saves == "output" else x)
        return y

    @classmethod
    def backward(cls, ctx, g):
        (saved,) = ctx.saved_tensors
        return cls.chain(g, saved)


class Sigmoid(Unary):
    """d sigmoid = s·(1−s)"""

    f = staticmethod(lambda x: stable_sigmoid(x))  # defined below
    chain = staticmethod(lambda g, s: g * s * (1 - s))


class Tanh(Unary):
    """d tanh = 1 − tanh²"""

    f = staticmethod(lambda x: array_module(x).tanh(x))
    chain = staticmethod(lambda g, t: g * (1 - t * t))


class Softmax(Function):
    """d softmax: grad_x = s·(g − Σ g·s)"""

    @staticmethod
    def forward(ctx, x, axis):
        xp = array_module(x)
        e = xp.exp(_minus_max(x, axis))
        s = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(s)
        ctx.axis = axis
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """log_softmax = x − max − log Σ exp(x − max); grad_x = g − softmax·Σ g"""

    @staticmethod
    def forward(ctx, x, axis):
        out = stable_log_softmax(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        xp = array_module(g)
        return g - xp.exp(out) * g.sum(axis=ctx.axis, keepdims=True), None


def stable_sigmoid(x):
    """1/(1+e^-x) without overflow: e^-|x| never exceeds 1."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def stable_log_softmax(x, axis):
    if x.size == 0:  # nothing to normalise (and log of an empty axis' sum would warn)
        return x.copy()
    xp = array_module(x)
    shifted = _minus_max(x, axis)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _minus_max(x, axis):
    """x − max along ``axis`` (so that exp cannot overflow); an empty x is returned as a copy, as
    the max of an empty axis does not exist (NumPy raises) and there is nothing to shift."""
    return x - x.max(axis=axis, keepdims=True) if x.size else x.copy()


def _axis(x, axis, fn):
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{fn}: axis must be an int, got {type(axis).__name__} ({axis!r})")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis={axis} is out of range for a tensor with {x.ndim} dimensions")
    return int(axis) % x.ndim


def floating(x, fn):
    """A Tensor ``x``, integers and bools promoted to float32 (as PyTorch's float functions do)."""
    checks.tensor(x, fn)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def relu(x):
    """max(x, 0) for a Tensor of any numeric dtype."""
    return ReLU.apply(checks.tensor(x, "relu"), 0.0)


def leaky_relu(x, negative_slope=0.01):
    checks.tensor(x, "leaky_relu", floating=True)
    if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    return ReLU.apply(x, float(negative_slope))


def sigmoid(x):
    return Sigmoid.apply(floating(x, "sigmoid"))


def tanh(x):
    return Tanh.apply(floating(x, "tanh"))


def softmax(x, axis=-1):
    checks.tensor(x, "softmax", floating=True)
    return Softmax.apply(x, _axis(x, axis, "softmax"))


def log_softmax(x, axis=-1):
    checks.tensor(x, "log_softmax", floating=True)
    return LogSoftmax.apply(x, _axis(x, axis, "log_softmax"))
