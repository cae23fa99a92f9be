"""Bed-of-nails (zero insertion) upsampling, forward and backward, on the CPU and on CUDA.

``out[i·f, j·f] = x[i, j]`` and zeros elsewhere; usually followed by a convolution that fills the
holes. Its backward keeps every f-th row and column of the gradient. Both directions are a gather
over the result, whose pixels (``nail``) are written once: CPU parallel over rows, CUDA one thread
per pixel.
"""

import math

import numpy as np
from numba import prange

from .. import gpu
from ._targets import cpu_kernel, dual, for_each_element, launch

__all__ = ["bed_of_nails_forward", "bed_of_nails_backward"]


def _nail(plane, i, j, f, backward):
    """Pixel (i, j) of one plane of the result. Forward (``plane`` the input): the input pixel
    (i/f, j/f) where both divide, else 0 (of the plane's dtype). Backward (``plane`` the output's
    gradient): the gradient at the nail (i·f, j·f)."""
    if backward:
        return plane[i * f, j * f]
    if i % f == 0 and j % f == 0:
        return plane[i // f, j // f]
    return plane.dtype.type(0)


nail_cpu, nail_cuda = dual(_nail)


def _nails(src, dst, n, c, i, j, params):
    f, backward = params
    dst[n, c, i, j] = nail_cuda(src[n, c], i, j, f, backward)


nails_cuda = for_each_element(_nails)


@cpu_kernel
def nails_cpu(src, dst, f, backward):
    N, C, H, W = dst.shape
    for r in prange(N * C * H):  # one row of dst per iteration
        n, c, i = r // (C * H), (r // H) % C, r % H
        for j in range(W):
            dst[n, c, i, j] = nail_cpu(src[n, c], i, j, f, backward)


def _run(src, shape, f, backward):
    if gpu.is_device_array(src):
        dst = gpu.empty(shape, src.dtype)
        nails_cuda[launch(math.prod(shape))](src, dst, (f, backward))
    else:
        dst = np.empty(shape, dtype=src.dtype)
        nails_cpu(np.ascontiguousarray(src), dst, f, backward)
    return dst


def bed_of_nails_forward(x, factor=2):
    """x (N, C, H, W) -> (N, C, H·f, W·f): x[i, j] at (i·f, j·f), zeros elsewhere."""
    f = int(factor)
    N, C, H, W = x.shape
    return _run(x, (N, C, H * f, W * f), f, False)


def bed_of_nails_backward(grad_out, factor=2):
    """grad_out (N, C, H·f, W·f) -> (N, C, H, W): the gradient at the nails."""
    f = int(factor)
    N, C, Ho, Wo = grad_out.shape
    return _run(grad_out, (N, C, Ho // f, Wo // f), f, True)
