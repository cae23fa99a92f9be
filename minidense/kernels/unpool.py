"""Writing values at stored indices and reading them back: ``max_unpool2d`` forward and backward,
and the backward of ``max_pool2d`` (its gradient goes to the index of each maximum).

An index is a flat position ``h·W + w`` in an (n, c) plane (``max_pool.py``). Two directions:

- scatter: ``dst[n, c].flat[idx] = src`` (unpooling) or ``+= src`` (max-pool's backward, where
  overlapping windows can share a maximum); positions outside the plane are skipped. The CPU
  kernel owns one (n, c) plane per ``prange`` iteration (race-free); on the GPU one thread per
  source element writes, and adds with atomics (the order of the adds, and so the last bits of a
  shared maximum's gradient, may vary). Unpooled to a repeated index, one of the writes wins
  (unspecified on the GPU; the last on the CPU).
- gather: ``out = src[n, c].flat[idx]`` (unpooling's backward), 0 outside; CPU parallel over rows.

On the GPU both directions are one kernel, ``indexed_cuda``: one thread per index.
"""

import math

import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, launch, owned_plane, unravel_nchw_cuda
from .geometry import as_pair, default_stride

__all__ = [
    "scatter_to_indices", "unpool_output_size", "max_unpool2d_forward", "max_unpool2d_backward",
]  # fmt: skip


@cpu_kernel
def scatter_to_indices_cpu(src, idx, dst, accumulate):
    """dst[n, c].flat[idx[n, c, ...]] (+)= src[n, c, ...]; one (n, c) plane per iteration."""
    N, C, Ho, Wo = src.shape
    for nc in prange(N * C):
        n, c, plane = owned_plane(dst, nc)
        flat = plane.reshape(-1)  # a view: planes are C-contiguous
        for oh in range(Ho):
            for ow in range(Wo):
                i = idx[n, c, oh, ow]
                if 0 <= i < flat.size:
                    if accumulate:
                        flat[i] += src[n, c, oh, ow]
                    else:
                        flat[i] = src[n, c, oh, ow]


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


GATHER, SET, ADD = 0, 1, 2  # what indexed_cuda does


@cuda.jit
def indexed_cuda(planes, idx, values, mode):
    """Between ``planes (N, C, H, W)`` and ``values`` (``idx``'s shape) at the flat positions
    ``idx``, one thread per entry of ``idx``: GATHER ``values = planes[n, c].flat[idx]`` (0 where
    the index is outside the plane); SET ``planes[n, c].flat[idx] = values`` and ADD ``+=``, with
    atomics (positions outside the plane are skipped)."""
    N, C, h, w = idx.shape
    H, W = planes.shape[2], planes.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * h * w, step):
        n, c, i, j = unravel_nchw_cuda(e, C, h, w)
        k = idx[n, c, i, j]
        inside = 0 <= k < H * W
        if mode == GATHER:
            values[n, c, i, j] = planes[n, c, k // W, k % W] if inside else values.dtype.type(0)
        elif inside and mode == ADD:
            cuda.atomic.add(planes, (n, c, k // W, k % W), values[n, c, i, j])
        elif inside:
            planes[n, c, k // W, k % W] = values[n, c, i, j]


def scatter_to_indices(src, indices, out_shape, accumulate):
    """A ``(N, C, H, W)`` array of zeros with ``src (N, C, h, w)`` written (``accumulate``: added)
    at ``indices`` (int64, like ``src``)."""
    if gpu.is_device_array(src):
        out = gpu.zeros(out_shape, src.dtype)
        if src.size:
            indexed_cuda[launch(src.size)](out, indices, src, ADD if accumulate else SET)
    else:
        out = np.empty(out_shape, dtype=src.dtype)
        scatter_to_indices_cpu(
            np.ascontiguousarray(src), np.ascontiguousarray(indices), out, accumulate
        )
    return out


def unpool_output_size(in_hw, kernel_size, stride=None, padding=0):
    """The default unpooled size, PyTorch's rule: ``(H_in - 1)·stride - 2·padding + kernel``."""
    k = as_pair(kernel_size)
    s, p = default_stride(stride, k), as_pair(padding)
    return tuple((in_hw[a] - 1) * s[a] - 2 * p[a] + k[a] for a in range(2))


def max_unpool2d_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """x, indices (N, C, H, W) -> (N, C, Hout, Wout) with x at the indices and zeros elsewhere;
    ``output_size`` (Hout, Wout) defaults to ``unpool_output_size``. Indices outside the output
    plane are skipped (the op refuses host indices that are)."""
    if output_size is None:
        output_size = unpool_output_size(x.shape[2:], kernel_size, stride, padding)
    shape = (x.shape[0], x.shape[1], *output_size)
    return scatter_to_indices(x, indices, shape, accumulate=False)


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max_unpool2d: gather grad_out at the indices -> indices' shape."""
    shape = tuple(indices.shape)
    if gpu.is_device_array(grad_out):
        gx = gpu.empty(shape, grad_out.dtype)
        indexed_cuda[launch(math.prod(shape))](grad_out, indices, gx, GATHER)
    else:
        gx = np.empty(shape, dtype=grad_out.dtype)
        gather_at_indices_cpu(np.ascontiguousarray(grad_out), np.ascontiguousarray(indices), gx)
    return gx
