"""Indexing: ``x[index]`` and ``x[index] = v`` with NumPy's basic and advanced indexing,
``take_along_axis`` / ``put_along_axis`` and ``add_at`` (a scatter-add).

Data never leaves the device: only the *index* computation (the flat positions that an integer or
bool index selects) happens on the host, on a stand-in array of positions. A basic index (ints,
slices, None, ...) is a view when the selection is contiguous, else a strided copy.
"""

import numpy as np
from numba import cuda

from ...gpu import CudaArray, launch
from ...gpu import layout as L
from ...gpu.layout import offset
from .elementwise import astype
from .operands import as_cuda, check_broadcastable, norm_axes, operand

__all__ = ["getitem", "setitem", "take_along_axis", "put_along_axis", "add_at"]


@cuda.jit
def _gather_kernel(out, src, index):
    """out[i] = src[index[i]]"""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[index[i]]


@cuda.jit
def _scatter_kernel(dst, index, src, position, shape, ss):
    """dst[index[k]] = src[off(position[k])]: element position[k] of the (broadcast) values."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, index.size, step):
        dst[index[k]] = src[offset(position[k], shape, ss)]


@cuda.jit
def _scatter_add_kernel(dst, index, src, shape, ss):
    """dst[index[i]] += src[off(i)], atomically: repeated indices accumulate (order, and so the
    last bits of a float sum, are non-deterministic)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, index.size, step):
        cuda.atomic.add(dst, index[i], src[offset(i, shape, ss)])


@cuda.jit
def _take_along_kernel(out, arr, sarr, ind, sind, shape, axis_len, axis_stride):
    """out[i] = arr[off(i) + ind[i]·axis_stride] (the axis' own stride is 0 in sarr)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        j = ind[offset(i, shape, sind)]
        if j < 0:
            j += axis_len
        out[i] = arr[offset(i, shape, sarr) + j * axis_stride]


@cuda.jit
def _put_along_kernel(arr, sarr, ind, sind, values, sval, shape, n, axis_len, axis_stride):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, step):
        j = ind[offset(i, shape, sind)]
        if j < 0:
            j += axis_len
        arr[offset(i, shape, sarr) + j * axis_stride] = values[offset(i, shape, sval)]


# ------------------------------------------------------------------------------------------------
# Index computation (host side)


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, slice)
        or (isinstance(p, int | np.integer) and not isinstance(p, bool | np.bool_))
        for p in parts
    )  # fmt: skip


def _basic_view(shape, index):
    """(offset, shape, strides) in elements of ``base[index]`` for a basic index.

    NumPy does the work on a stand-in with one-byte elements (so byte offsets are element
    offsets); np.empty does not touch its memory, so this is cheap for any size.
    """
    stand = np.empty(max(L.prod(shape), 1), dtype=np.uint8)
    index = index if isinstance(index, tuple) else (index,)
    if not any(p is Ellipsis for p in index):
        index = index + (Ellipsis,)  # so that x[1, 2] gives a 0-d view, not a NumPy scalar
    view = np.lib.stride_tricks.as_strided(stand, shape, L.contiguous_strides(shape))[index]
    start = view.__array_interface__["data"][0] - stand.__array_interface__["data"][0]
    return start, view.shape, view.strides


def _is_contiguous(shape, strides):
    expected = L.contiguous_strides(shape)
    return all(n == 1 or s == e for n, s, e in zip(shape, strides, expected, strict=True))


def _host_index(index):
    """The index with its arrays on the host (index computation only, never data)."""
    if isinstance(index, tuple):
        return tuple(_host_index(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    if hasattr(index, "copy_to_host") and not isinstance(index, np.ndarray):
        return index.copy_to_host()  # a CudaArray or a raw device array
    return index


def _flat_indices(shape, index):
    """Flat positions that ``base[index]`` selects, as a host int64 array of the result's shape."""
    return np.arange(L.prod(shape), dtype=np.int64).reshape(shape)[_host_index(index)]


# ------------------------------------------------------------------------------------------------
# The functions


def getitem(a, index):
    """``a[index]``."""
    if _is_basic(index):
        start, shape, strides = _basic_view(a.shape, index)
        size = L.prod(shape)
        if size == 0:
            return CudaArray.empty(shape, a.dtype)
        if _is_contiguous(shape, strides):
            return CudaArray(a._buf[start : start + size], shape, a._owner)
        out = CudaArray.empty(shape, a.dtype)
        L.copy(out._buf, 0, L.contiguous_strides(shape), a._buf, start, strides, shape)
        return out
    flat = _flat_indices(a.shape, index)
    out = CudaArray.empty(flat.shape, a.dtype)
    if flat.size:
        _gather_kernel[launch(flat.size)](out._buf, a._buf, cuda.to_device(flat.ravel()))
    return out


def setitem(a, index, value):
    """``a[index] = value`` (a repeated index takes its last value, as in NumPy)."""
    value = operand(value, a.dtype)
    if value.dtype != a.dtype:
        value = astype(value, a.dtype)
    elif value._owner is a._owner:
        value = value.copy()  # it may overlap what we are about to write
    if _is_basic(index):
        start, shape, strides = _basic_view(a.shape, index)
        check_broadcastable(value.shape, shape, "assign")
        L.copy(a._buf, start, strides, value._buf, 0, L.broadcast_strides(value.shape, shape),
               shape)  # fmt: skip
        return
    flat = _flat_indices(a.shape, index)
    check_broadcastable(value.shape, flat.shape, "assign")
    if flat.size:
        # Keep the last occurrence of each index only.
        _, last = np.unique(flat.ravel()[::-1], return_index=True)
        position = np.sort(flat.size - 1 - last)
        shape, sv = L.dims(flat.shape, L.broadcast_strides(value.shape, flat.shape))
        _scatter_kernel[launch(position.size)](
            a._buf, cuda.to_device(np.ascontiguousarray(flat.ravel()[position])), value._buf,
            cuda.to_device(position), shape, sv,
        )  # fmt: skip


def _along_axis(arr, indices, axis):
    if indices.dtype.kind not in "iu":
        raise IndexError("indices must be an integer array")
    if indices.ndim != arr.ndim:
        raise ValueError("indices and arr must have the same number of dimensions")
    axis = norm_axes(axis, arr.ndim)[0]
    base = list(arr.shape)
    base[axis] = 1
    shape = np.broadcast_shapes(tuple(base), indices.shape)
    # arr is read at its own strides, 0 on its broadcast axes and on `axis` (the index supplies it).
    strides = L.contiguous_strides(arr.shape)
    sarr = [0 if n == 1 else s for n, s in zip(base, strides, strict=True)]
    axis_stride = strides[axis]
    return axis, shape, tuple(sarr), L.broadcast_strides(indices.shape, shape), axis_stride


def take_along_axis(arr, indices, axis):
    """out[..., i, ...] = arr[..., indices[..., i, ...], ...] along ``axis``."""
    arr, indices = as_cuda(arr, "take_along_axis"), as_cuda(indices, "take_along_axis")
    axis, shape, sarr, sind, axis_stride = _along_axis(arr, indices, axis)
    out = CudaArray.empty(shape, arr.dtype)
    if out.size:
        dims, sarr, sind = L.dims(shape, sarr, sind)
        _take_along_kernel[launch(out.size)](
            out._buf, arr._buf, sarr, indices._buf, sind, dims, arr.shape[axis], axis_stride
        )
    return out


def put_along_axis(arr, indices, values, axis):
    """arr[..., indices[..., i, ...], ...] = values, in place."""
    arr, indices = as_cuda(arr, "put_along_axis"), as_cuda(indices, "put_along_axis")
    axis, shape, sarr, sind, axis_stride = _along_axis(arr, indices, axis)
    values = astype(operand(values, arr.dtype), arr.dtype, copy=False)
    check_broadcastable(values.shape, shape, "put")
    n = L.prod(shape)
    if n:
        dims, sarr, sind, sval = L.dims(shape, sarr, sind, L.broadcast_strides(values.shape, shape))
        _put_along_kernel[launch(n)](
            arr._buf, sarr, indices._buf, sind, values._buf, sval, dims, n, arr.shape[axis],
            axis_stride,
        )  # fmt: skip


def add_at(target, index, values):
    """``target[index] += values`` with repeated indices accumulated (atomic adds, so the order of
    a float sum, and its last bits, are non-deterministic)."""
    target = as_cuda(target, "add_at")
    flat = _flat_indices(target.shape, index)
    values = astype(operand(values, target.dtype), target.dtype, copy=False)
    check_broadcastable(values.shape, flat.shape, "add")
    if flat.size:
        dims, sv = L.dims(flat.shape, L.broadcast_strides(values.shape, flat.shape))
        _scatter_add_kernel[launch(flat.size)](
            target._buf, cuda.to_device(flat.ravel()), values._buf, dims, sv
        )
