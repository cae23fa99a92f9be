"""max_pool2d (with indices), avg_pool2d and max_unpool2d, forward and backward, CPU and CUDA.

Indices are flat positions ``h·W + w`` inside each (n, c) plane of the pooled input, int64, as in
PyTorch, so ``max_unpool2d`` can put every maximum back where it came from.

Worked example: a 4x4 plane, 2x2 windows, stride 2 -> 2x2 output; window (0, 1) covers rows 0-1,
columns 2-3, and if its maximum sits at (1, 2) the index is 1·4 + 2 = 6.

Output size (PyTorch's rule): ``floor((H + 2p - d(k-1) - 1) / s) + 1``, or with ``ceil_mode`` the
ceiling, minus one if the last window would then start at or past ``H + p`` (it must start inside
the input or the left padding).

CPU forward passes are parallel over output rows; CPU backward passes over (n, c) planes, each
prange iteration owning one plane of the gradient (race-free). The CUDA max-pool backward
scatters with ``cuda.atomic.add``; the order of the adds, hence the last bits of a pixel that is
the maximum of several overlapping windows, is not deterministic. The CUDA avg-pool backward is a
deterministic gather.
"""

import math

import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, is_device_array, launch, unravel_nchw_cuda
from .conv import check_float_array, pair

__all__ = [
    "pool_output_size",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "max_unpool2d_forward",
    "max_unpool2d_backward",
    "unpool_output_size",
]


# ----------------------------------------------------------------------------- geometry


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """Pooled length along one axis, PyTorch's formula including its ceil_mode correction."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding only
    return out


def _stride(stride, kernel, op):
    """PyTorch's default: stride None (or an empty sequence) means stride = kernel_size."""
    if stride is None or (isinstance(stride, tuple | list) and len(stride) == 0):
        return kernel
    return pair(stride, "stride", op, 1)


def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate and normalise pooling arguments; returns (k, s, p, d, (Ho, Wo))."""
    check_float_array(x, "input", op)
    k = pair(kernel_size, "kernel_size", op, 1)
    s = _stride(stride, k, op)
    p = pair(padding, "padding", op, 0)
    d = pair(dilation, "dilation", op, 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half of kernel_size {k}")
    H, W = x.shape[2:]
    per_axis = zip((H, W), k, s, p, d, strict=True)
    out = tuple(pool_output_size(*a, bool(ceil_mode)) for a in per_axis)
    if min(out) < 1:
        raise ValueError(
            f"{op}: input {H}x{W} with padding {p} is smaller than the (dilated) kernel "
            f"{d[0] * (k[0] - 1) + 1}x{d[1] * (k[1] - 1) + 1}: output would be {out[0]}x{out[1]}"
        )
    if max(d) > 1:  # a dilated window can skip over the whole image and see only padding
        for size, kk, ss, pp, dd, n in zip((H, W), k, s, p, d, out, strict=True):
            for o in range(n):
                taps = range(o * ss - pp, o * ss - pp + (kk - 1) * dd + 1, dd)
                if not any(0 <= t < size for t in taps):
                    raise ValueError(
                        f"{op}: with input {H}x{W}, kernel_size {k}, dilation {d} and padding {p}, "
                        f"window {o} lies entirely in the padding; reduce padding or dilation"
                    )
    return k, s, p, d, out


# ----------------------------------------------------------------------------- per-window math


def _max_bounds(o, k, s, p, d, size):
    """One axis of a max-pool window: first in-image tap and the end, e.g. k 3, s 2, p 1, d 1,
    o 0 -> taps -1, 0, 1 -> (0, 2). Taps in the padding are skipped (padding is -inf)."""
    start = o * s - p
    end = min(start + (k - 1) * d + 1, size)
    if start < 0:
        start += ((-start + d - 1) // d) * d
    return start, end


def _max_window(plane, h0, h1, dh, w0, w1, dw):
    """(max, flat index h·W + w) over rows h0:h1:dh and columns w0:w1:dw of a (H, W) plane.

    Strict '>' in row-major order keeps the first maximum. A NaN wins, as in PyTorch (the last
    NaN's index); testing ``v != v`` on every tap made the scan four times slower (the branch
    can no longer become a select), so the fast scan only sums the window and rescans the rare
    windows whose sum is NaN. The index starts at the first tap: an all -inf window still names
    a pixel. In the plane's dtype (a float32 sum that overflows gives inf, not NaN).
    """
    T = plane.dtype.type
    W = plane.shape[1]
    best = T(-math.inf)
    arg = h0 * W + w0
    total = T(0)
    # while loops, not range(h0, h1, dh): a range with a variable step divides to count its
    # trips, one integer division per window.
    ih = h0
    while ih < h1:
        iw = w0
        while iw < w1:
            v = plane[ih, iw]
            total += v
            if v > best:
                best = v
                arg = ih * W + iw
            iw += dw
        ih += dh
    if total != total:  # a NaN in the window (or +inf and -inf): rescan, letting NaN win
        best = T(-math.inf)
        arg = h0 * W + w0
        ih = h0
        while ih < h1:
            iw = w0
            while iw < w1:
                v = plane[ih, iw]
                if v > best or v != v:
                    best = v
                    arg = ih * W + iw
                iw += dw
            ih += dh
    return best, arg


def _avg_window(o, k, s, p, size):
    """One axis of an average-pool window: (start, end) clipped to the input, and the extent
    clipped to the padded input only (what count_include_pad=True divides by)."""
    start = o * s - p
    end = min(start + k, size + p)
    extent = end - start
    return max(start, 0), min(end, size), extent


max_bounds_cpu, max_bounds_cuda = dual(_max_bounds)
max_window_cpu, max_window_cuda = dual(_max_window)
avg_window_cpu, avg_window_cuda = dual(_avg_window)


def _avg_divisor(h0, h1, eh, w0, w1, ew, count_include_pad):
    return eh * ew if count_include_pad else (h1 - h0) * (w1 - w0)


avg_divisor_cpu, avg_divisor_cuda = dual(_avg_divisor)


# ----------------------------------------------------------------------------- max_pool2d


@cpu_kernel
def max_pool2d_forward_cpu(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    for r in prange(N * C * Ho):  # one output row per iteration
        n, c, oh = r // (C * Ho), (r // Ho) % C, r % Ho
        plane = x[n, c]
        h0, h1 = max_bounds_cpu(oh, kh, sh, ph, dh, H)
        for ow in range(Wo):
            w0, w1 = max_bounds_cpu(ow, kw, sw, pw, dw, W)
            v, a = max_window_cpu(plane, h0, h1, dh, w0, w1, dw)
            out[n, c, oh, ow] = v
            idx[n, c, oh, ow] = a


@cuda.jit
def max_pool2d_forward_cuda(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    N, C, Ho, Wo = out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * Ho * Wo, step):
        n, c, oh, ow = unravel_nchw_cuda(e, C, Ho, Wo)
        h0, h1 = max_bounds_cuda(oh, kh, sh, ph, dh, x.shape[2])
        w0, w1 = max_bounds_cuda(ow, kw, sw, pw, dw, x.shape[3])
        v, a = max_window_cuda(x[n, c], h0, h1, dh, w0, w1, dw)
        out[n, c, oh, ow] = v
        idx[n, c, oh, ow] = a


@cpu_kernel
def scatter_to_indices_cpu(grad_out, idx, grad_in):
    """grad_in[n, c].flat[idx[n, c, ...]] += grad_out[n, c, ...]; one (n, c) plane per iteration."""
    N, C, Ho, Wo = grad_out.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        flat = grad_in[n, c].reshape(-1)  # a view: planes are C-contiguous
        flat[:] = 0
        for oh in range(Ho):
            for ow in range(Wo):
                i = idx[n, c, oh, ow]
                if 0 <= i < flat.size:
                    flat[i] += grad_out[n, c, oh, ow]


@cuda.jit
def scatter_to_indices_cuda(grad_out, idx, grad_in):
    """Atomic scatter-add (non-deterministic order); grad_in must start at zero."""
    N, C, Ho, Wo = grad_out.shape
    H, W = grad_in.shape[2], grad_in.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * Ho * Wo, step):
        n, c, oh, ow = unravel_nchw_cuda(e, C, Ho, Wo)
        i = idx[n, c, oh, ow]
        if 0 <= i < H * W:
            cuda.atomic.add(grad_in, (n, c, i // W, i % W), grad_out[n, c, oh, ow])


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), indices int64 (N, C, Ho, Wo), flat h·W + w)."""
    k, s, p, d, (Ho, Wo) = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation,
                                      ceil_mode)  # fmt: skip
    shape = (x.shape[0], x.shape[1], Ho, Wo)
    args = (*k, *s, *p, *d)
    if is_device_array(x):
        out = gpu.empty(shape, x.dtype)
        idx = gpu.empty(shape, np.int64)
        max_pool2d_forward_cuda[launch(math.prod(shape))](x, out, idx, *args)
    else:
        out = np.empty(shape, dtype=x.dtype)
        idx = np.empty(shape, dtype=np.int64)
        max_pool2d_forward_cpu(np.ascontiguousarray(x), out, idx, *args)
    return out, idx


def max_pool2d_backward(grad_out, indices, input_shape):
    """Route each output gradient to the input pixel its index names -> (N, C, H, W)."""
    return _scatter(grad_out, indices, tuple(input_shape))


def _scatter(values, indices, out_shape):
    if is_device_array(values):
        out = gpu.zeros(out_shape, values.dtype)
        scatter_to_indices_cuda[launch(values.size)](values, indices, out)
    else:
        out = np.empty(out_shape, dtype=values.dtype)
        scatter_to_indices_cpu(np.ascontiguousarray(values), np.ascontiguousarray(indices), out)
    return out


# ----------------------------------------------------------------------------- avg_pool2d


@cpu_kernel
def avg_pool2d_forward_cpu(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    T = x.dtype.type  # sums and divisions in the input's dtype, as on the GPU (and in PyTorch)
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    for r in prange(N * C * Ho):
        n, c, oh = r // (C * Ho), (r // Ho) % C, r % Ho
        h0, h1, eh = avg_window_cpu(oh, kh, sh, ph, H)
        for ow in range(Wo):
            w0, w1, ew = avg_window_cpu(ow, kw, sw, pw, W)
            acc = T(0)
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    acc += x[n, c, ih, iw]
            div = avg_divisor_cpu(h0, h1, eh, w0, w1, ew, count_include_pad)
            out[n, c, oh, ow] = acc / T(div) if div > 0 else T(0)


@cuda.jit
def avg_pool2d_forward_cuda(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    T = x.dtype.type
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * Ho * Wo, step):
        n, c, oh, ow = unravel_nchw_cuda(e, C, Ho, Wo)
        h0, h1, eh = avg_window_cuda(oh, kh, sh, ph, H)
        w0, w1, ew = avg_window_cuda(ow, kw, sw, pw, W)
        acc = T(0)
        for ih in range(h0, h1):
            for iw in range(w0, w1):
                acc += x[n, c, ih, iw]
        div = avg_divisor_cuda(h0, h1, eh, w0, w1, ew, count_include_pad)
        out[n, c, oh, ow] = acc / T(div) if div > 0 else T(0)


@cpu_kernel
def avg_pool2d_backward_cpu(grad_out, grad_in, kh, kw, sh, sw, ph, pw, count_include_pad):
    """Spread each output gradient evenly over its window; one (n, c) plane per iteration."""
    N, C, Ho, Wo = grad_out.shape
    H, W = grad_in.shape[2], grad_in.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = grad_in[n, c]
        plane[:] = 0
        for oh in range(Ho):
            h0, h1, eh = avg_window_cpu(oh, kh, sh, ph, H)
            for ow in range(Wo):
                w0, w1, ew = avg_window_cpu(ow, kw, sw, pw, W)
                div = avg_divisor_cpu(h0, h1, eh, w0, w1, ew, count_include_pad)
                if div <= 0:
                    continue
                g = grad_out[n, c, oh, ow] / grad_out.dtype.type(div)
                plane[h0:h1, w0:w1] += g


@cuda.jit
def avg_pool2d_backward_cuda(grad_out, grad_in, kh, kw, sh, sw, ph, pw, count_include_pad):
    """One thread per input pixel, gathering from the windows that cover it (deterministic)."""
    T = grad_out.dtype.type
    N, C, Ho, Wo = grad_out.shape
    H, W = grad_in.shape[2], grad_in.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * H * W, step):
        n, c, ih, iw = unravel_nchw_cuda(e, C, H, W)
        # Windows with start <= ih + p < start + k, i.e. oh in ((ih+p-k)/s, (ih+p)/s].
        oh_lo = max(0, (ih + ph - kh) // sh + 1)
        oh_hi = min(Ho, (ih + ph) // sh + 1)
        ow_lo = max(0, (iw + pw - kw) // sw + 1)
        ow_hi = min(Wo, (iw + pw) // sw + 1)
        acc = T(0)
        for oh in range(oh_lo, oh_hi):
            h0, h1, eh = avg_window_cuda(oh, kh, sh, ph, H)
            if ih < h0 or ih >= h1:
                continue
            for ow in range(ow_lo, ow_hi):
                w0, w1, ew = avg_window_cuda(ow, kw, sw, pw, W)
                if iw < w0 or iw >= w1:
                    continue
                div = avg_divisor_cuda(h0, h1, eh, w0, w1, ew, count_include_pad)
                if div > 0:
                    acc += grad_out[n, c, oh, ow] / T(div)
        grad_in[n, c, ih, iw] = acc


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):  # fmt: skip
    """x (N, C, H, W) -> (N, C, Ho, Wo): window means (padding counted as zeros if asked)."""
    k, s, p, _, (Ho, Wo) = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    shape = (x.shape[0], x.shape[1], Ho, Wo)
    args = (*k, *s, *p, bool(count_include_pad))
    if is_device_array(x):
        out = gpu.empty(shape, x.dtype)
        avg_pool2d_forward_cuda[launch(math.prod(shape))](x, out, *args)
    else:
        out = np.empty(shape, dtype=x.dtype)
        avg_pool2d_forward_cpu(np.ascontiguousarray(x), out, *args)
    return out


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):  # fmt: skip
    """Gradient of avg_pool2d with respect to its input, shape ``input_shape``."""
    k = pair(kernel_size, "kernel_size", "avg_pool2d", 1)
    s = _stride(stride, k, "avg_pool2d")
    p = pair(padding, "padding", "avg_pool2d", 0)
    args = (*k, *s, *p, bool(count_include_pad))
    shape = tuple(input_shape)
    if is_device_array(grad_out):
        gx = gpu.empty(shape, grad_out.dtype)
        avg_pool2d_backward_cuda[launch(math.prod(shape))](grad_out, gx, *args)
    else:
        gx = np.empty(shape, dtype=grad_out.dtype)
        avg_pool2d_backward_cpu(np.ascontiguousarray(grad_out), gx, *args)
    return gx


# ----------------------------------------------------------------------------- max_unpool2d


def unpool_output_size(in_hw, kernel_size, stride=None, padding=0, output_size=None):
    """PyTorch's rule: default ``(H_in - 1)·stride - 2·padding + kernel``; an explicit
    ``output_size`` (an int for H = W, (H, W) or (N, C, H, W)) must lie strictly within one
    stride of it."""
    op = "max_unpool2d"
    k = pair(kernel_size, "kernel_size", op, 1)
    s = _stride(stride, k, op)
    p = pair(padding, "padding", op, 0)
    default = tuple((in_hw[a] - 1) * s[a] - 2 * p[a] + k[a] for a in range(2))
    if output_size is None:
        size = default
    else:
        if isinstance(output_size, int | np.integer) and not isinstance(output_size, bool):
            given = size = (output_size, output_size)  # square, as kernel_size etc. accept
        elif hasattr(output_size, "__iter__"):
            given = size = tuple(output_size)
        else:
            raise TypeError(
                f"{op}: output_size must be (H, W) or (N, C, H, W) ints, or an int for "
                f"H = W, got {output_size!r}"
            )
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size
        ):
            raise ValueError(
                f"{op}: output_size must be (H, W) or (N, C, H, W) ints, or an int for "
                f"H = W, got {output_size!r}"
            )
        for a in range(2):
            lo, hi = default[a] - s[a], default[a] + s[a]
            if not lo < size[a] < hi:
                raise ValueError(
                    f"{op}: output_size {given} is inconsistent with the pooling "
                    f"arguments: dim {a} must be strictly between {lo} and {hi} "
                    f"(default {default[a]} = (in - 1)·stride - 2·padding + kernel)"
                )
        size = (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise ValueError(f"{op}: output size {size} is empty")
    return size


@cpu_kernel
def max_unpool2d_forward_cpu(x, idx, out):
    """out[n, c].flat[idx] = x; one (n, c) plane per iteration, out of range indices skipped."""
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        flat = out[n, c].reshape(-1)  # a view: planes are C-contiguous
        flat[:] = 0
        for h in range(H):
            for w in range(W):
                i = idx[n, c, h, w]
                if 0 <= i < flat.size:
                    flat[i] = x[n, c, h, w]


@cuda.jit
def max_unpool2d_forward_cuda(x, idx, out):
    """out must start at zero; duplicate indices: one of the writes wins (unspecified)."""
    N, C, H, W = x.shape
    Hout, Wout = out.shape[2], out.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * H * W, step):
        n, c, h, w = unravel_nchw_cuda(e, C, H, W)
        i = idx[n, c, h, w]
        if 0 <= i < Hout * Wout:
            out[n, c, i // Wout, i % Wout] = x[n, c, h, w]


@cpu_kernel
def gather_at_indices_cpu(src, idx, out):
    """out[n, c, h, w] = src[n, c].flat[idx[n, c, h, w]]; parallel over output rows."""
    N, C, H, W = out.shape
    for r in prange(N * C * H):
        n, c, h = r // (C * H), (r // H) % C, r % H
        flat = src[n, c].reshape(-1)
        for w in range(W):
            i = idx[n, c, h, w]
            out[n, c, h, w] = flat[i] if 0 <= i < flat.size else 0


@cuda.jit
def gather_at_indices_cuda(src, idx, out):
    N, C, H, W = out.shape
    Hs, Ws = src.shape[2], src.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * H * W, step):
        n, c, h, w = unravel_nchw_cuda(e, C, H, W)
        i = idx[n, c, h, w]
        out[n, c, h, w] = src[n, c, i // Ws, i % Ws] if 0 <= i < Hs * Ws else src.dtype.type(0)


def _check_indices(op, x, indices):
    if not (isinstance(indices, np.ndarray) or is_device_array(indices)):
        raise TypeError(f"{op}: indices must be an array, got {type(indices).__name__}")
    if np.dtype(indices.dtype) != np.int64:
        raise TypeError(f"{op}: indices must be int64 (from max_pool2d), got {indices.dtype}")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(
            f"{op}: indices shape {tuple(indices.shape)} must equal input shape {tuple(x.shape)}"
        )
    if is_device_array(indices) != is_device_array(x):
        raise ValueError(f"{op}: input and indices must be on the same device")


def max_unpool2d_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, H, W) -> (N, C, Hout, Wout) with x at the indices and zeros elsewhere.

    Host indices are checked against the output plane (ValueError); on the GPU an out-of-range
    index is skipped.
    """
    op = "max_unpool2d"
    check_float_array(x, "input", op)
    _check_indices(op, x, indices)
    Hout, Wout = unpool_output_size(x.shape[2:], kernel_size, stride, padding, output_size)
    shape = (x.shape[0], x.shape[1], Hout, Wout)
    if is_device_array(x):
        out = gpu.zeros(shape, x.dtype)
        max_unpool2d_forward_cuda[launch(x.size)](x, indices, out)
    else:
        if indices.size and (indices.min() < 0 or indices.max() >= Hout * Wout):
            raise ValueError(
                f"{op}: indices must lie in [0, {Hout * Wout}) for a {Hout}x{Wout} output, got "
                f"range [{indices.min()}, {indices.max()}]"
            )
        out = np.empty(shape, dtype=x.dtype)
        max_unpool2d_forward_cpu(np.ascontiguousarray(x), np.ascontiguousarray(indices), out)
    return out


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max_unpool2d: gather grad_out at the indices -> indices' shape."""
    shape = tuple(indices.shape)
    if is_device_array(grad_out):
        gx = gpu.empty(shape, grad_out.dtype)
        gather_at_indices_cuda[launch(math.prod(shape))](grad_out, indices, gx)
    else:
        gx = np.empty(shape, dtype=grad_out.dtype)
        gather_at_indices_cpu(np.ascontiguousarray(grad_out), np.ascontiguousarray(indices), gx)
    return gx
