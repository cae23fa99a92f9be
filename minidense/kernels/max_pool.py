"""max_pool2d with indices, forward and backward, on the CPU and on CUDA.

Indices are flat positions ``h·W + w`` inside each (n, c) plane of the pooled input, int64, as in
PyTorch, so ``max_unpool2d`` (``unpool.py``) can put every maximum back where it came from.
Worked example: a 4x4 plane, 2x2 windows, stride 2 -> 2x2 output; window (0, 1) covers rows 0-1,
columns 2-3, and if its maximum sits at (1, 2) the index is 1·4 + 2 = 6.

The window's bounds and its max scan are written once (``max_bounds``, ``max_window``); the CPU
kernel is parallel over output rows, the CUDA kernel runs one thread per output element. The
backward scatters each gradient to its index: ``unpool.scatter_to_indices``.
"""

import math

import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, launch, unravel_nchw_cuda
from .geometry import as_pair, default_stride, pool_output_size
from .unpool import scatter_to_indices

__all__ = ["max_pool2d_forward", "max_pool2d_backward"]


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


max_bounds_cpu, max_bounds_cuda = dual(_max_bounds)
max_window_cpu, max_window_cuda = dual(_max_window)


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


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """x (N, C, H, W) -> (out (N, C, Ho, Wo), indices int64 (N, C, Ho, Wo), flat h·W + w)."""
    k = as_pair(kernel_size)
    s, p, d = default_stride(stride, k), as_pair(padding), as_pair(dilation)
    per_axis = zip(x.shape[2:], k, s, p, d, strict=True)
    shape = (x.shape[0], x.shape[1], *(pool_output_size(*a, bool(ceil_mode)) for a in per_axis))
    args = (*k, *s, *p, *d)
    if gpu.is_device_array(x):
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
    return scatter_to_indices(grad_out, indices, tuple(input_shape), accumulate=True)
