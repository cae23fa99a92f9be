"""RoIPool kernels (Fast R-CNN), forward and backward, on the CPU and on CUDA.

Each bin ``(ph, pw)`` of RoI ``k`` (``roi.py``: the rounded box and its bins' bounds) gives the
maximum of its cells and where it is (``argmax``, a flat position ``h·W + w``, for the backward);
the scan starts at the bin's first cell and moves on a strictly greater value only
(``max_step``), so the first maximum in row-major order wins a tie; an empty bin gives 0 and -1.
The backward routes each output's gradient to its argmax.

CPU: channels-last features, one ``prange`` iteration per RoI, the max scan vectorised over
channels; the backward is partitioned by (image, channel block) as roi_align's: race-free and
deterministic. CUDA: one thread per output element; the backward adds with atomics (bins of
overlapping RoIs share argmaxes, so the order of the additions may vary).
"""

import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, launch, unravel_nchw_cuda
from .roi import (
    by_image,
    channel_block,
    channels_last,
    max_step_cpu,
    max_step_cuda,
    roi_pool_bin_bounds_cpu,
    roi_pool_bin_bounds_cuda,
    roi_pool_geometry_cpu,
    roi_pool_geometry_cuda,
)

__all__ = ["roi_pool_forward", "roi_pool_backward"]


@cpu_kernel
def roi_pool_forward_cpu(xcl, H, rois, out, argmax, PH, spatial_scale):
    """``xcl (N, H*W, C)`` -> ``out, argmax (K, C, PH*PW)``; argmax is ``h*W + w`` or -1."""
    N, HW, C = xcl.shape
    W = HW // H
    K, _, P = out.shape
    PW = P // PH
    for k in prange(K):
        n = int(rois[k, 0])
        sy, sx, bh, bw = roi_pool_geometry_cpu(rois, k, spatial_scale, PH, PW)
        best = np.empty((P, C), dtype=xcl.dtype)
        where = np.empty((P, C), dtype=np.int32)
        for ph in range(PH):
            for pw in range(PW):
                m = best[ph * PW + pw]
                a = where[ph * PW + pw]
                h0, h1, w0, w1 = roi_pool_bin_bounds_cpu(ph, pw, sy, sx, bh, bw, H, W)
                if h1 <= h0 or w1 <= w0:
                    m[:] = 0
                    a[:] = -1
                    continue
                m[:] = xcl[n, h0 * W + w0]
                a[:] = h0 * W + w0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = xcl[n, h * W + w]
                        idx = h * W + w
                        for c in range(C):
                            m[c], a[c] = max_step_cpu(v[c], m[c], a[c], idx)
        for c in range(C):
            for b in range(P):
                out[k, c, b] = best[b, c]
                argmax[k, c, b] = where[b, c]


@cpu_kernel
def roi_pool_backward_cpu(grad_out, argmax, rois, order, first, grad_x, cblock):
    """Route ``grad_out (K, C, PH*PW)`` to the stored argmax in ``grad_x (N, C, H*W)``."""
    N, C, HW = grad_x.shape
    K, _, P = grad_out.shape
    nblocks = (C + cblock - 1) // cblock
    for t in prange(N * nblocks):
        n = t // nblocks
        c0 = (t % nblocks) * cblock
        c1 = min(C, c0 + cblock)
        for c in range(c0, c1):
            grad_x[n, c, :] = 0
        for j in range(first[n], first[n + 1]):
            k = order[j]
            for c in range(c0, c1):
                gx = grad_x[n, c]
                for b in range(P):
                    idx = argmax[k, c, b]
                    if idx >= 0:
                        gx[idx] += grad_out[k, c, b]


@cuda.jit
def roi_pool_forward_cuda(x, rois, out, argmax, spatial_scale):
    """``x (N, C, H, W)`` -> ``out, argmax (K, C, PH, PW)``."""
    N, C, H, W = x.shape
    K, _, PH, PW = out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, K * C * PH * PW, step):
        k, c, ph, pw = unravel_nchw_cuda(e, C, PH, PW)
        n = int(rois[k, 0])
        sy, sx, bh, bw = roi_pool_geometry_cuda(rois, k, spatial_scale, PH, PW)
        h0, h1, w0, w1 = roi_pool_bin_bounds_cuda(ph, pw, sy, sx, bh, bw, H, W)
        if h1 <= h0 or w1 <= w0 or n < 0 or n >= N:
            out[k, c, ph, pw] = 0
            argmax[k, c, ph, pw] = -1
            continue
        m = x[n, c, h0, w0]
        a = h0 * W + w0
        for h in range(h0, h1):
            for w in range(w0, w1):
                m, a = max_step_cuda(x[n, c, h, w], m, a, h * W + w)
        out[k, c, ph, pw] = m
        argmax[k, c, ph, pw] = a


@cuda.jit
def roi_pool_backward_cuda(grad_out, argmax, rois, grad_x):
    """Add ``grad_out`` at the argmax into zeroed ``grad_x (N, C, H*W)`` (atomics)."""
    N, C, HW = grad_x.shape
    K, _, PH, PW = grad_out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, K * C * PH * PW, step):
        k, c, ph, pw = unravel_nchw_cuda(e, C, PH, PW)
        idx = int(argmax[k, c, ph, pw])
        if idx >= 0:
            cuda.atomic.add(grad_x, (int(rois[k, 0]), c, idx), grad_out[k, c, ph, pw])


def roi_pool_forward(x, rois, output_size, spatial_scale=1.0):
    """RoIPool: ``x (N, C, H, W)``, ``rois (K, 5)`` in ``x``'s dtype and place, ``output_size
    (PH, PW)`` -> ``(out, argmax)``, both ``(K, C, PH, PW)``; ``argmax`` (int32) is the flat index
    ``h*W + w`` of each bin's maximum in its (n, c) plane, -1 for an empty bin (output 0)."""
    PH, PW = output_size
    N, C, H, W = x.shape
    K = rois.shape[0]
    scale = x.dtype.type(spatial_scale)
    if gpu.is_device_array(x):
        out = gpu.empty((K, C, PH, PW), x.dtype)
        argmax = gpu.empty((K, C, PH, PW), np.int32)
        if out.size:
            roi_pool_forward_cuda[launch(out.size)](x, rois, out, argmax, scale)
        return out, argmax
    out = np.empty((K, C, PH, PW), dtype=x.dtype)
    argmax = np.empty((K, C, PH, PW), dtype=np.int32)
    if out.size:
        xcl = channels_last(x).reshape(N, H * W, C)
        roi_pool_forward_cpu(
            xcl, H, np.ascontiguousarray(rois), out.reshape(K, C, PH * PW),
            argmax.reshape(K, C, PH * PW), PH, scale,
        )  # fmt: skip
    return out, argmax


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Gradient of roi_pool: each output's gradient goes to its argmax -> ``(N, C, H, W)``.

    CPU: parallel and deterministic. CUDA: atomics, non-deterministic summation order.
    """
    N, C, H, W = (int(s) for s in input_shape)
    if gpu.is_device_array(grad_out):
        grad_x = gpu.zeros((N, C, H, W), grad_out.dtype)
        if grad_out.size:
            roi_pool_backward_cuda[launch(grad_out.size)](
                grad_out, argmax, rois, grad_x.reshape(N, C, H * W)
            )
        return grad_x
    if grad_out.size == 0:
        return np.zeros((N, C, H, W), dtype=grad_out.dtype)
    rois = np.ascontiguousarray(rois, dtype=np.float64)
    grad_x = np.empty((N, C, H * W), dtype=grad_out.dtype)
    order, first = by_image(rois, N)
    K, _, PH, PW = grad_out.shape
    roi_pool_backward_cpu(
        np.ascontiguousarray(grad_out).reshape(K, C, PH * PW),
        np.ascontiguousarray(argmax, dtype=np.int32).reshape(K, C, PH * PW),
        rois, order, first, grad_x, channel_block(N, C),
    )  # fmt: skip
    return grad_x.reshape(N, C, H, W)
