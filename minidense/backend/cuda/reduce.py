"""Reductions: sum, max, min (one kernel each, from a factory over the ufunc), mean = sum / n,
argmax. The reduced axes are moved last (a transposing copy when they are not), so each output
element reduces one contiguous row; long rows are cut into chunks reduced in several passes."""

import math

import numpy as np
from numba import cuda

from ...gpu import CudaArray, launch
from ...gpu.layout import prod
from .creation import zeros
from .elementwise import astype, binary, kernel_for
from .layout import transpose
from .operands import as_cuda, norm_axes

__all__ = ["reduce", "sum", "max", "min", "amax", "amin", "mean", "argmax", "any", "all"]

REDUCE_CHUNK = 1024  # rows longer than this are reduced in several passes (more parallelism)


def _make_reduce(op):
    @cuda.jit
    def reduce_kernel(src, out, m, chunk, nchunks):
        # Row r of the (rows, m) input is cut into nchunks pieces of `chunk`; out[r, c] reduces one.
        start, step = cuda.grid(1), cuda.gridsize(1)
        for o in range(start, out.size, step):
            r = o // nchunks
            c = o - r * nchunks
            base = r * m + c * chunk
            stop = m - c * chunk
            if stop > chunk:
                stop = chunk
            acc = src[base]
            for j in range(1, stop):
                acc = op(acc, src[base + j])
            out[o] = acc

    return reduce_kernel


@cuda.jit
def _argmax_kernel(src, out, m):
    """out[r] = index of the first maximum of row r of a (rows, m) array (NaN wins, as NumPy)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, out.size, step):
        base = r * m
        best = src[base]
        where = 0
        for j in range(1, m):
            v = src[base + j]
            if best == best and (v > best or v != v):
                best = v
                where = j
        out[r] = where


def reduce(a, axis, keepdims, op):
    """sum ("add"), max ("maximum") or min ("minimum") over ``axis``."""
    a = as_cuda(a, "reduction")
    axes = norm_axes(axis, a.ndim)
    kept = [k for k in range(a.ndim) if k not in axes]
    if keepdims:
        out_shape = tuple(1 if k in axes else n for k, n in enumerate(a.shape))
    else:
        out_shape = tuple(a.shape[k] for k in kept)
    rows = prod(a.shape[k] for k in kept)
    m = prod(a.shape[k] for k in axes)
    if op == "add" and a.dtype.kind in "biu":
        a = astype(a, np.int64)  # NumPy sums bools and small ints as int64
    if m == 0:
        if op != "add":
            name = "maximum" if op == "maximum" else "minimum"
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        return zeros(out_shape, a.dtype)
    if not axes:
        return a.copy().reshape(out_shape)
    if rows == 0:
        return CudaArray.empty(out_shape, a.dtype)
    order = kept + list(axes)
    src = a if order == list(range(a.ndim)) else transpose(a, order)
    buf = src._buf
    while True:
        chunk = m if (m <= REDUCE_CHUNK or rows >= 4096) else REDUCE_CHUNK
        nchunks = (m + chunk - 1) // chunk
        out = CudaArray.empty(rows * nchunks, a.dtype)
        kernel_for(_make_reduce, op)[launch(out.size)](buf, out._buf, m, chunk, nchunks)
        if nchunks == 1:
            return out.reshape(out_shape)
        buf, m = out._buf, nchunks  # reduce the partial results of each row again


def sum(a, axis=None, keepdims=False, dtype=None):
    out = reduce(a, axis, keepdims, "add")
    return out if dtype is None else astype(out, dtype, copy=False)


def max(a, axis=None, keepdims=False):
    return reduce(a, axis, keepdims, "maximum")


def min(a, axis=None, keepdims=False):
    return reduce(a, axis, keepdims, "minimum")


amax, amin = max, min


def mean(a, axis=None, keepdims=False):
    a = as_cuda(a, "mean")
    n = prod(a.shape[k] for k in norm_axes(axis, a.ndim))
    return binary("divide", reduce(a, axis, keepdims, "add"), n if n else math.nan)  # sum / n


def argmax(a, axis=None, keepdims=False):
    """Index of the first maximum along ``axis`` (over the flattened array when None)."""
    a = as_cuda(a, "argmax")
    if a.size == 0:
        raise ValueError("attempt to get argmax of an empty sequence")
    if axis is None:
        src, m = a, a.size
        out_shape = (1,) * a.ndim if keepdims else ()
    else:
        axis = norm_axes(axis, a.ndim)[0]
        order = [k for k in range(a.ndim) if k != axis] + [axis]
        src = a if axis == a.ndim - 1 else transpose(a, order)  # the searched axis last
        m = a.shape[axis]
        shape = list(a.shape)
        shape[axis] = 1
        out_shape = (
            tuple(shape) if keepdims else tuple(n for k, n in enumerate(a.shape) if k != axis)
        )
    out = CudaArray.empty(out_shape, np.int64)
    _argmax_kernel[launch(out.size)](src._buf, out._buf, m)
    return out


def any(a):
    """Whether any element is non-zero (a Python bool)."""
    return (
        bool(reduce(binary("not_equal", a, 0), None, False, "maximum").item()) if a.size else False
    )


def all(a):
    """Whether every element is non-zero (a Python bool)."""
    return (
        bool(reduce(binary("not_equal", a, 0), None, False, "minimum").item()) if a.size else True
    )
