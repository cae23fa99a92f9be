"""Activations and the softmax family, each numerically stable for large |x|."""

import numbers

from ..autograd import Function
from ..backend import array_module


class ReLU(Function):
    """relu(x) = max(x, 0) (NaN stays NaN); the gradient is 1 where x > 0 (0 at x = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx, x, slope):
        xp = array_module(x)
        pos = x > 0
        ctx.save_for_backward(pos)
        ctx.slope = slope
        if slope:
            return xp.where(pos, x, x * slope)
        # maximum, not where(pos, x, 0): 8× faster in NumPy, and NaN stays NaN as in PyTorch.
        return xp.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        (pos,) = ctx.saved_tensors
        if ctx.slope:
            return array_module(g).where(pos, g, g * ctx.slope), None
        return g * pos, None


class Sigmoid(Function):
    """d sigmoid = s·(1−s)"""

    @staticmethod
    def forward(ctx, x):
        s = stable_sigmoid(x)
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * s * (1 - s)


class Tanh(Function):
    """d tanh = 1 − tanh²"""

    @staticmethod
    def forward(ctx, x):
        t = array_module(x).tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1 - t * t)


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


def _axis(x, axis):
    if not isinstance(axis, int) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for a tensor with {x.ndim} dimensions")
    return axis % x.ndim


def relu(x):
    return ReLU.apply(x, 0.0)


def leaky_relu(x, negative_slope=0.01):
    if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    return ReLU.apply(x, float(negative_slope))


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def softmax(x, axis=-1):
    return Softmax.apply(x, _axis(x, axis))


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, _axis(x, axis))
