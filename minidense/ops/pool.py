"""Pooling and unpooling: ``max_pool2d``, ``avg_pool2d``, ``max_unpool2d`` (PyTorch semantics).

``max_pool2d(..., return_indices=True)`` also returns where each maximum came from, as flat
positions ``h·W + w`` in its (n, c) plane; SegNet's decoder hands them to ``max_unpool2d``, which
puts every value back at its position and zeros elsewhere. The kernels are in
``minidense.kernels.max_pool``, ``avg_pool`` and ``unpool``; the arguments are checked here.
"""

import numpy as np

from .. import checks
from ..autograd import Function
from ..kernels import avg_pool as KA
from ..kernels import max_pool as KM
from ..kernels import unpool as KU
from ..kernels.geometry import pool_output_size

__all__ = ["max_pool2d", "avg_pool2d", "max_unpool2d", "MaxPool2dFn", "AvgPool2dFn",
           "MaxUnpool2dFn"]  # fmt: skip


class MaxPool2dFn(Function):
    """out = max over the window; grad_x[argmax] += grad_out (indices are an output too)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        args = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
        out, idx = KM.max_pool2d_forward(x, *args, ceil_mode)
        ctx.save_for_backward(idx)
        ctx.in_shape = x.shape
        return out, idx

    @staticmethod
    def backward(ctx, grad_out, grad_idx):
        (idx,) = ctx.saved_tensors
        gx = KM.max_pool2d_backward(grad_out, idx, ctx.in_shape)
        return gx, None, None, None, None, None


class AvgPool2dFn(Function):
    """out = Σ window / divisor; grad_x += grad_out / divisor over the window."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        k, s, p, _ = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
        ctx.args = (k, s, p, ceil_mode, count_include_pad)
        ctx.in_shape = x.shape
        return KA.avg_pool2d_forward(x, *ctx.args)

    @staticmethod
    def backward(ctx, grad_out):
        gx = KA.avg_pool2d_backward(grad_out, ctx.in_shape, *ctx.args)
        return gx, None, None, None, None, None


class MaxUnpool2dFn(Function):
    """out.flat[idx] = x; grad_x = grad_out.flat[idx] (a gather)."""

    @staticmethod
    def forward(ctx, x, indices, kernel_size, stride, padding, output_size):
        size = _unpool_args(x, indices, kernel_size, stride, padding, output_size)
        ctx.save_for_backward(indices)
        return KU.max_unpool2d_forward(x, indices, kernel_size, stride, padding, size)

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        return KU.max_unpool2d_backward(grad_out, indices), None, None, None, None, None


# ------------------------------------------------------------------------------- argument checks


def _window(fn, kernel_size, stride, padding):
    """kernel_size, stride (None: kernel_size) and padding as checked (h, w) pairs."""
    k = checks.pair(kernel_size, fn, "kernel_size", 1)
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        s = k  # PyTorch's default
    else:
        s = checks.pair(stride, fn, "stride", 1)
    return k, s, checks.pair(padding, fn, "padding", 0)


def _pool_args(fn, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Check the input array and the window; returns the (h, w) pairs (k, s, p, d)."""
    checks.float_array(x, fn, "input")
    k, s, p = _window(fn, kernel_size, stride, padding)
    d = checks.pair(dilation, fn, "dilation", 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}: padding {p} must be at most half of kernel_size {k}")
    H, W = x.shape[2:]
    per_axis = zip((H, W), k, s, p, d, strict=True)
    out = tuple(pool_output_size(*a, bool(ceil_mode)) for a in per_axis)
    if min(out) < 1:
        raise ValueError(
            f"{fn}: input {H}x{W} with padding {p} is smaller than the (dilated) kernel "
            f"{d[0] * (k[0] - 1) + 1}x{d[1] * (k[1] - 1) + 1}: output would be {out[0]}x{out[1]}"
        )
    if max(d) > 1:  # a dilated window can skip over the whole image and see only padding
        for size, kk, ss, pp, dd, n in zip((H, W), k, s, p, d, out, strict=True):
            for o in range(n):
                taps = range(o * ss - pp, o * ss - pp + (kk - 1) * dd + 1, dd)
                if not any(0 <= t < size for t in taps):
                    raise ValueError(
                        f"{fn}: with input {H}x{W}, kernel_size {k}, dilation {d} and padding {p}, "
                        f"window {o} lies entirely in the padding; reduce padding or dilation"
                    )
    return k, s, p, d


def _unpool_args(x, indices, kernel_size, stride, padding, output_size):
    """Check max_unpool2d's arrays and output size; returns the output's (H, W). An explicit
    ``output_size`` (an int for H = W, (H, W) or (N, C, H, W)) must lie strictly within one
    stride of the default ``(H_in - 1)·stride - 2·padding + kernel``, as in PyTorch."""
    fn = "max_unpool2d"
    checks.float_array(x, fn, "input")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(
            f"{fn}: indices shape {tuple(indices.shape)} must equal input shape {tuple(x.shape)}"
        )
    k, s, p = _window(fn, kernel_size, stride, padding)
    default = KU.unpool_output_size(x.shape[2:], k, s, p)
    if output_size is None:
        size = default
    else:
        if isinstance(output_size, int | np.integer) and not isinstance(output_size, bool):
            given = size = (output_size, output_size)  # square, as kernel_size etc. accept
        elif hasattr(output_size, "__iter__"):
            given = size = tuple(output_size)
        else:
            raise TypeError(
                f"{fn}: output_size must be (H, W) or (N, C, H, W) ints, or an int for "
                f"H = W, got {output_size!r}"
            )
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size
        ):
            raise ValueError(
                f"{fn}: output_size must be (H, W) or (N, C, H, W) ints, or an int for "
                f"H = W, got {output_size!r}"
            )
        for a in range(2):
            lo, hi = default[a] - s[a], default[a] + s[a]
            if not lo < size[a] < hi:
                raise ValueError(
                    f"{fn}: output_size {given} is inconsistent with the pooling "
                    f"arguments: dim {a} must be strictly between {lo} and {hi} "
                    f"(default {default[a]} = (in - 1)·stride - 2·padding + kernel)"
                )
        size = (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise ValueError(f"{fn}: output size {size} is empty")
    if isinstance(indices, np.ndarray) and indices.size:  # device indices are not copied back
        lo, hi = indices.min(), indices.max()
        if lo < 0 or hi >= size[0] * size[1]:
            raise ValueError(
                f"{fn}: indices must lie in [0, {size[0] * size[1]}) for a {size[0]}x{size[1]} "
                f"output, got range [{lo}, {hi}]"
            )
    return size


# ------------------------------------------------------------------------------- public functions


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
    checks.tensor(input, "max_pool2d")
    checks.flag(ceil_mode, "max_pool2d", "ceil_mode")
    checks.flag(return_indices, "max_pool2d", "return_indices")
    out, idx = MaxPool2dFn.apply(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):  # fmt: skip
    """Mean over ``kernel_size`` windows; ``count_include_pad`` divides by the window size
    including its zero padding (else by the number of input pixels in the window).

    Args: input (Tensor[N, C, H, W]); the rest as in ``max_pool2d``. Returns Tensor[N, C, Ho, Wo].
    """
    checks.tensor(input, "avg_pool2d")
    checks.flag(ceil_mode, "avg_pool2d", "ceil_mode")
    checks.flag(count_include_pad, "avg_pool2d", "count_include_pad")
    return AvgPool2dFn.apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool2d``: each value goes back to its index, zeros elsewhere.

    Args:
        input (Tensor[N, C, H, W]); indices (int64 Tensor[N, C, H, W]) from max_pool2d;
        kernel_size, stride (default: kernel_size), padding: the pooling's arguments;
        output_size: an int (H = W), (H, W) or (N, C, H, W), needed when the pooled input had a
        size that the default ``(H - 1)·stride - 2·padding + kernel`` does not give back (e.g.
        odd sizes); it must lie strictly within one stride of that default.
    Returns:
        Tensor[N, C, Hout, Wout].
    """
    checks.tensor(input, "max_unpool2d")
    checks.tensor(indices, "max_unpool2d", "indices", layout="(int64, from max_pool2d)")
    # Before the op's generic check, which would call float indices a float32/float64 mix-up.
    if indices.dtype != np.int64:
        raise TypeError(
            f"max_unpool2d: indices must be int64 (from max_pool2d), got {indices.dtype}"
        )
    return MaxUnpool2dFn.apply(input, indices, kernel_size, stride, padding, output_size)
