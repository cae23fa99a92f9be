"""Bed-of-nails (zero insertion) upsampling, forward and backward, on the CPU and on CUDA.

``out[i·f, j·f] = x[i, j]`` and zeros elsewhere; usually followed by a convolution that fills the
holes. The value of an output pixel (``nail_value``) is written once; the backward keeps every
f-th row and column (a gather, on both targets).
"""

import math

import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, launch, unravel_nchw_cuda

__all__ = ["bed_of_nails_forward", "bed_of_nails_backward"]


def _nail_value(plane, i, j, f):
    """Zero insertion: input pixel (i/f, j/f) where both divide, else 0 (of the plane's dtype)."""
    if i % f == 0 and j % f == 0:
        return plane[i // f, j // f]
    return plane.dtype.type(0)


nail_value_cpu, nail_value_cuda = dual(_nail_value)


@cpu_kernel
def bed_of_nails_forward_cpu(x, out, f):
    N, C, Ho, Wo = out.shape
    for r in prange(N * C * Ho):
        n, c, i = r // (C * Ho), (r // Ho) % C, r % Ho
        for j in range(Wo):
            out[n, c, i, j] = nail_value_cpu(x[n, c], i, j, f)


@cuda.jit
def bed_of_nails_forward_cuda(x, out, f):
    N, C, Ho, Wo = out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * Ho * Wo, step):
        n, c, i, j = unravel_nchw_cuda(e, C, Ho, Wo)
        out[n, c, i, j] = nail_value_cuda(x[n, c], i, j, f)


@cpu_kernel
def bed_of_nails_backward_cpu(grad_out, grad_in, f):
    """The gradient of zero insertion keeps every f-th row and column (a gather)."""
    N, C, H, W = grad_in.shape
    for r in prange(N * C * H):
        n, c, i = r // (C * H), (r // H) % C, r % H
        for j in range(W):
            grad_in[n, c, i, j] = grad_out[n, c, i * f, j * f]


@cuda.jit
def bed_of_nails_backward_cuda(grad_out, grad_in, f):
    N, C, H, W = grad_in.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * H * W, step):
        n, c, i, j = unravel_nchw_cuda(e, C, H, W)
        grad_in[n, c, i, j] = grad_out[n, c, i * f, j * f]


def bed_of_nails_forward(x, factor=2):
    """x (N, C, H, W) -> (N, C, H·f, W·f): x[i, j] at (i·f, j·f), zeros elsewhere."""
    f = int(factor)
    N, C, H, W = x.shape
    shape = (N, C, H * f, W * f)
    if gpu.is_device_array(x):
        out = gpu.empty(shape, x.dtype)
        bed_of_nails_forward_cuda[launch(math.prod(shape))](x, out, f)
    else:
        out = np.empty(shape, dtype=x.dtype)
        bed_of_nails_forward_cpu(np.ascontiguousarray(x), out, f)
    return out


def bed_of_nails_backward(grad_out, factor=2):
    """grad_out (N, C, H·f, W·f) -> (N, C, H, W): the gradient at the nails."""
    f = int(factor)
    N, C, Ho, Wo = grad_out.shape
    shape = (N, C, Ho // f, Wo // f)
    if gpu.is_device_array(grad_out):
        gx = gpu.empty(shape, grad_out.dtype)
        bed_of_nails_backward_cuda[launch(math.prod(shape))](grad_out, gx, f)
    else:
        gx = np.empty(shape, dtype=grad_out.dtype)
        bed_of_nails_backward_cpu(np.ascontiguousarray(grad_out), gx, f)
    return gx
