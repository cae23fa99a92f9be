"""Layout functions: reshape (a view), and transpose, broadcast_to, concatenate, stack and pad,
each a strided copy (``gpu.layout.copy``) into a new contiguous array."""

import numpy as np

from ...gpu import CudaArray
from ...gpu import layout as L
from ...gpu.array import shape_tuple
from .creation import full
from .elementwise import astype
from .operands import as_cuda, check_broadcastable, is_scalar, norm_axes, operand

__all__ = [
    "reshape", "transpose", "swapaxes", "broadcast_to", "concatenate", "stack", "pad", "copy",
    "ascontiguousarray",
]  # fmt: skip


def reshape(a, shape):
    return as_cuda(a, "reshape").reshape(shape)


def copy(a):
    return as_cuda(a, "copy").copy()


def ascontiguousarray(a):
    return as_cuda(a, "ascontiguousarray")  # CUDA arrays always are


def transpose(a, axes=None):
    """A contiguous copy with the axes permuted (reversed when ``axes`` is None)."""
    a = as_cuda(a, "transpose")
    axes = (
        tuple(range(a.ndim))[::-1] if axes is None else tuple(int(k) % max(a.ndim, 1) for k in axes)
    )
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"axes {axes} do not permute the {a.ndim} axes of the array")
    if axes == tuple(range(a.ndim)):
        return a.copy()
    shape = tuple(a.shape[k] for k in axes)
    src_strides = L.contiguous_strides(a.shape)
    out = CudaArray.empty(shape, a.dtype)
    L.copy(out._buf, 0, L.contiguous_strides(shape), a._buf, 0,
           tuple(src_strides[k] for k in axes), shape)  # fmt: skip
    return out


def swapaxes(a, axis1, axis2):
    a = as_cuda(a, "swapaxes")
    axes = list(range(a.ndim))
    axis1, axis2 = axis1 % a.ndim, axis2 % a.ndim
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


def broadcast_to(a, shape):
    """``a`` repeated to ``shape`` (a materialised copy, unlike NumPy's read-only view)."""
    a = operand(a, np.asarray(a).dtype if is_scalar(a) else None)
    shape = shape_tuple(shape)
    check_broadcastable(a.shape, shape, "broadcast")
    out = CudaArray.empty(shape, a.dtype)
    L.copy(out._buf, 0, L.contiguous_strides(shape), a._buf, 0,
           L.broadcast_strides(a.shape, shape), shape)  # fmt: skip
    return out


def concatenate(arrays, axis=0):
    arrays = [as_cuda(x, "concatenate") for x in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    ref = arrays[0]
    axis = norm_axes(axis, ref.ndim)[0]
    for x in arrays:
        if x.ndim != ref.ndim or any(
            n != r for k, (n, r) in enumerate(zip(x.shape, ref.shape, strict=True)) if k != axis
        ):
            raise ValueError(
                f"concatenate: shape {x.shape} does not match {ref.shape} outside axis {axis}"
            )
    dtype = np.result_type(*[x.dtype for x in arrays])
    shape = list(ref.shape)
    shape[axis] = sum(x.shape[axis] for x in arrays)
    out = CudaArray.empty(shape, dtype)
    strides = L.contiguous_strides(out.shape)
    start = 0
    for x in arrays:
        x = astype(x, dtype, copy=False)
        L.copy(out._buf, start * strides[axis], strides, x._buf, 0,
               L.contiguous_strides(x.shape), x.shape)  # fmt: skip
        start += x.shape[axis]
    return out


def stack(arrays, axis=0):
    arrays = [as_cuda(x, "stack") for x in arrays]
    axis = norm_axes(axis, arrays[0].ndim + 1)[0] if arrays else 0
    return concatenate([x.reshape(x.shape[:axis] + (1,) + x.shape[axis:]) for x in arrays], axis)


def pad(a, pad_width, mode="constant", constant_values=0):
    a = as_cuda(a, "pad")
    if mode != "constant":
        raise ValueError(f"CUDA pad supports mode='constant' only, got {mode!r}")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad widths must be non-negative, got {pad_width}")
    shape = tuple(int(n + lo + hi) for n, (lo, hi) in zip(a.shape, widths, strict=True))
    out = full(shape, constant_values, a.dtype)
    strides = L.contiguous_strides(shape)
    base = sum(int(lo) * s for (lo, _), s in zip(widths, strides, strict=True))
    L.copy(out._buf, base, strides, a._buf, 0, L.contiguous_strides(a.shape), a.shape)
    return out
