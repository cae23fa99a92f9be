"""Making CUDA arrays: from host data, empty, filled, ranges."""

import math

import numpy as np
from numba import cuda

from ...gpu import CudaArray, is_device_array, launch, to_host
from .elementwise import astype

__all__ = [
    "asarray", "to_host", "empty", "zeros", "ones", "full", "empty_like", "zeros_like",
    "ones_like", "full_like", "arange",
]  # fmt: skip


def asarray(a, dtype=None):
    """``a`` on the GPU (CudaArrays pass through; host data is copied over)."""
    if isinstance(a, CudaArray):
        out = a
    elif is_device_array(a):
        out = CudaArray.from_device(a)
    else:
        out = CudaArray.from_host(np.asarray(a))
    if dtype is None or np.dtype(dtype) == out.dtype:
        return out
    return astype(out, dtype, copy=False)


def empty(shape, dtype=np.float64):
    return CudaArray.empty(shape, dtype)


def full(shape, fill_value, dtype=None):
    if dtype is None:
        dtype = np.asarray(fill_value).dtype
    out = CudaArray.empty(shape, dtype)
    out.fill(fill_value)
    return out


def zeros(shape, dtype=np.float64):
    return full(shape, 0, dtype)


def ones(shape, dtype=np.float64):
    return full(shape, 1, dtype)


def empty_like(a, dtype=None):
    return CudaArray.empty(a.shape, a.dtype if dtype is None else dtype)


def zeros_like(a, dtype=None):
    return zeros(a.shape, a.dtype if dtype is None else dtype)


def ones_like(a, dtype=None):
    return ones(a.shape, a.dtype if dtype is None else dtype)


def full_like(a, fill_value, dtype=None):
    return full(a.shape, fill_value, a.dtype if dtype is None else dtype)


@cuda.jit
def _arange_kernel(out, first, delta):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = first + i * delta


def arange(start, stop=None, step=1, dtype=None):
    if stop is None:
        start, stop = 0, start
    host_dtype = np.arange(start, start + step, step).dtype if dtype is None else np.dtype(dtype)
    n = max(0, math.ceil((stop - start) / step))
    out = CudaArray.empty((n,), host_dtype)
    if n:
        _arange_kernel[launch(n)](out._buf, host_dtype.type(start), host_dtype.type(step))
    return out
