"""Pooling and unpooling: ``max_pool2d``, ``avg_pool2d``, ``max_unpool2d`` (PyTorch semantics).

``max_pool2d(..., return_indices=True)`` also returns where each maximum came from, as flat
positions ``h·W + w`` in its (n, c) plane; SegNet's decoder hands them to ``max_unpool2d``, which
puts every value back at its position and zeros elsewhere. The kernels are in
``minidense.kernels.pool``.
"""

import numpy as np

from ..autograd import Function
from ..kernels import pool as K
from ..tensor import Tensor

__all__ = ["max_pool2d", "avg_pool2d", "max_unpool2d", "MaxPool2dFn", "AvgPool2dFn",
           "MaxUnpool2dFn"]  # fmt: skip


class MaxPool2dFn(Function):
    """out = max over the window; grad_x[argmax] += grad_out (indices are an output too)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        out, idx = K.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(idx)
        ctx.in_shape = x.shape
        return out, idx

    @staticmethod
    def backward(ctx, grad_out, grad_idx):
        (idx,) = ctx.saved_tensors
        gx = K.max_pool2d_backward(grad_out, idx, ctx.in_shape)
        return gx, None, None, None, None, None


class AvgPool2dFn(Function):
    """out = Σ window / divisor; grad_x += grad_out / divisor over the window."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad)
        ctx.in_shape = x.shape
        return K.avg_pool2d_forward(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad_out):
        gx = K.avg_pool2d_backward(grad_out, ctx.in_shape, *ctx.args)
        return gx, None, None, None, None, None


class MaxUnpool2dFn(Function):
    """out.flat[idx] = x; grad_x = grad_out.flat[idx] (a gather)."""

    @staticmethod
    def forward(ctx, x, indices, kernel_size, stride, padding, output_size):
        ctx.save_for_backward(indices)
        return K.max_unpool2d_forward(x, indices, kernel_size, stride, padding, output_size)

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        return K.max_unpool2d_backward(grad_out, indices), None, None, None, None, None


def _check_tensor(fn, name, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: {name} must be a minidense Tensor, got {type(t).__name__}")


def _check_flag(fn, name, value):
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be True or False, got {value!r}")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):  # fmt: skip
    """Max over ``kernel_size`` windows (padding counts as -inf; the first maximum wins ties).

    Args:
        input (Tensor[N, C, H, W]); kernel_size, stride (default: kernel_size), padding (at most
        half the kernel), dilation: int or (h, w); ceil_mode: round the output size up, as long
        as the last window starts inside the input or its left padding.
    Returns:
        Tensor[N, C, Ho, Wo], and with ``return_indices`` also int64 Tensor[N, C, Ho, Wo] of flat
        positions ``h·W + w`` in the input plane.
    """
    _check_tensor("max_pool2d", "input", input)
    _check_flag("max_pool2d", "ceil_mode", ceil_mode)
    _check_flag("max_pool2d", "return_indices", return_indices)
    out, idx = MaxPool2dFn.apply(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):  # fmt: skip
    """Mean over ``kernel_size`` windows; ``count_include_pad`` divides by the window size
    including its zero padding (else by the number of input pixels in the window).

    Args: input (Tensor[N, C, H, W]); the rest as in ``max_pool2d``. Returns Tensor[N, C, Ho, Wo].
    """
    _check_tensor("avg_pool2d", "input", input)
    _check_flag("avg_pool2d", "ceil_mode", ceil_mode)
    _check_flag("avg_pool2d", "count_include_pad", count_include_pad)
    return AvgPool2dFn.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool2d``: each value goes back to its index, zeros elsewhere.

    Args:
        input (Tensor[N, C, H, W]); indices (int64 Tensor[N, C, H, W]) from max_pool2d;
        kernel_size, stride (default: kernel_size), padding: the pooling's arguments;
        output_size: an int (H = W), (H, W) or (N, C, H, W), needed when the pooled input had a size that the
        default ``(H - 1)·stride - 2·padding + kernel`` does not give back (e.g. odd sizes);
        it must lie strictly within one stride of that default.
    Returns:
        Tensor[N, C, Hout, Wout].
    """
    _check_tensor("max_unpool2d", "input", input)
    if not isinstance(indices, Tensor):
        raise TypeError(
            f"max_unpool2d: indices must be a minidense Tensor (int64, from max_pool2d), "
            f"got {type(indices).__name__}"
        )
    # Before the op's generic check, which would call float indices a float32/float64 mix-up.
    if indices.dtype != np.int64:
        raise TypeError(
            f"max_unpool2d: indices must be int64 (from max_pool2d), got {indices.dtype}"
        )
    return MaxUnpool2dFn.apply(input, indices, kernel_size, stride, padding, output_size)
