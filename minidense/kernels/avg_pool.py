"""avg_pool2d, forward and backward, on the CPU and on CUDA.

A window's bounds (clipped to the input, and to the padded input for ``count_include_pad``), its
divisor and its mean are written once (``avg_window``, ``avg_divisor``, ``window_mean``). The
forward computes one mean per output element on both targets (CPU: parallel over output rows;
CUDA: one thread per element). The backward spreads each output's gradient evenly over its
window: the CPU adds it to each window of a plane, one (n, c) plane per ``prange`` iteration
(race-free); the GPU has one thread per input pixel gather it from the windows that cover it
(deterministic, no atomics).
"""

import math

import numpy as np
from numba import prange

from .. import gpu
from ._targets import cpu_kernel, dual, dual_calling, for_each_element, launch, owned_plane
from .geometry import as_pair, default_stride, pool_output_size

__all__ = ["avg_pool2d_forward", "avg_pool2d_backward"]


def _avg_window(o, k, s, p, size):
    """One axis of an average-pool window: (start, end) clipped to the input, and the extent
    clipped to the padded input only (what count_include_pad=True divides by)."""
    start = o * s - p
    end = min(start + k, size + p)
    extent = end - start
    return max(start, 0), min(end, size), extent


def _avg_divisor(h0, h1, eh, w0, w1, ew, count_include_pad):
    return eh * ew if count_include_pad else (h1 - h0) * (w1 - w0)


avg_window_cpu, avg_window_cuda = dual(_avg_window)
avg_divisor_cpu, avg_divisor_cuda = dual(_avg_divisor)


def _window_mean(plane, h0, h1, eh, w0, w1, ew, count_include_pad):
    """The mean of ``plane[h0:h1, w0:w1]`` by the window's divisor (0 for an empty window), in
    the plane's dtype (as on the GPU, and in PyTorch)."""
    T = plane.dtype.type
    acc = T(0)
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            acc += plane[ih, iw]
    div = avg_divisor(h0, h1, eh, w0, w1, ew, count_include_pad)
    return acc / T(div) if div > 0 else T(0)


window_mean_cpu, window_mean_cuda = dual_calling(
    _window_mean, avg_divisor=(avg_divisor_cpu, avg_divisor_cuda)
)
avg_divisor = avg_divisor_cpu


@cpu_kernel
def avg_pool2d_forward_cpu(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    N, C, Ho, Wo = out.shape
    H, W = x.shape[2], x.shape[3]
    for r in prange(N * C * Ho):  # one output row per iteration
        n, c, oh = r // (C * Ho), (r // Ho) % C, r % Ho
        h0, h1, eh = avg_window_cpu(oh, kh, sh, ph, H)
        for ow in range(Wo):
            w0, w1, ew = avg_window_cpu(ow, kw, sw, pw, W)
            out[n, c, oh, ow] = window_mean_cpu(x[n, c], h0, h1, eh, w0, w1, ew, count_include_pad)


def _avg_forward(x, out, n, c, oh, ow, params):
    kh, kw, sh, sw, ph, pw, count_include_pad = params
    h0, h1, eh = avg_window_cuda(oh, kh, sh, ph, x.shape[2])
    w0, w1, ew = avg_window_cuda(ow, kw, sw, pw, x.shape[3])
    out[n, c, oh, ow] = window_mean_cuda(x[n, c], h0, h1, eh, w0, w1, ew, count_include_pad)


avg_pool2d_forward_cuda = for_each_element(_avg_forward)


@cpu_kernel
def avg_pool2d_backward_cpu(grad_out, grad_in, kh, kw, sh, sw, ph, pw, count_include_pad):
    """Spread each output gradient evenly over its window; one (n, c) plane per iteration."""
    N, C, Ho, Wo = grad_out.shape
    H, W = grad_in.shape[2], grad_in.shape[3]
    for nc in prange(N * C):
        n, c, plane = owned_plane(grad_in, nc)
        for oh in range(Ho):
            h0, h1, eh = avg_window_cpu(oh, kh, sh, ph, H)
            for ow in range(Wo):
                w0, w1, ew = avg_window_cpu(ow, kw, sw, pw, W)
                div = avg_divisor_cpu(h0, h1, eh, w0, w1, ew, count_include_pad)
                if div <= 0:
                    continue
                g = grad_out[n, c, oh, ow] / grad_out.dtype.type(div)
                plane[h0:h1, w0:w1] += g


def _avg_backward(grad_out, grad_in, n, c, ih, iw, params):
    """One input pixel's gradient, gathered from the windows that cover it (deterministic)."""
    kh, kw, sh, sw, ph, pw, count_include_pad = params
    T = grad_out.dtype.type
    H, W = grad_in.shape[2], grad_in.shape[3]
    Ho, Wo = grad_out.shape[2], grad_out.shape[3]
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


avg_pool2d_backward_cuda = for_each_element(_avg_backward)


def _run(src, shape, kernel_size, stride, padding, count_include_pad, backward):
    """Forward (``src`` the input, ``shape`` the output's) or backward (``src`` the output's
    gradient, ``shape`` the input's)."""
    k = as_pair(kernel_size)
    args = (*k, *default_stride(stride, k), *as_pair(padding), bool(count_include_pad))
    if gpu.is_device_array(src):
        dst = gpu.empty(shape, src.dtype)
        kernel = avg_pool2d_backward_cuda if backward else avg_pool2d_forward_cuda
        kernel[launch(math.prod(shape))](src, dst, args)
    else:
        dst = np.empty(shape, dtype=src.dtype)
        kernel = avg_pool2d_backward_cpu if backward else avg_pool2d_forward_cpu
        kernel(np.ascontiguousarray(src), dst, *args)
    return dst


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):  # fmt: skip
    """x (N, C, H, W) -> (N, C, Ho, Wo): window means (padding counted as zeros if asked)."""
    k = as_pair(kernel_size)
    per_axis = zip(x.shape[2:], k, default_stride(stride, k), as_pair(padding), strict=True)
    shape = (x.shape[0], x.shape[1], *(pool_output_size(*a, 1, bool(ceil_mode)) for a in per_axis))
    return _run(x, shape, kernel_size, stride, padding, count_include_pad, backward=False)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):  # fmt: skip
    """Gradient of avg_pool2d with respect to its input, shape ``input_shape``."""
    shape = tuple(input_shape)
    return _run(grad_out, shape, kernel_size, stride, padding, count_include_pad, backward=True)
