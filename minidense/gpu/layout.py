"""Shapes and strides, and the one strided copy and the one fill kernel of the GPU side.

A ``CudaArray`` is one flat C-contiguous buffer; a transpose, a strided slice, a broadcast or a
concatenation is a *strided copy* between two flat buffers, described on the host by a shape and
two lists of strides (in elements, not bytes)::

    dst[d0 + offset(i, shape, ds)] = src[s0 + offset(i, shape, ss)]     for i < prod(shape)

where ``offset`` turns the C-order position ``i`` into the memory offset under ``strides`` (a
stride of 0 repeats an element: broadcasting).
"""

import math

from numba import cuda

from .launch import launch

__all__ = [
    "prod", "contiguous_strides", "broadcast_strides", "dims", "MAX_DIMS", "offset", "copy",
    "fill",
]  # fmt: skip

MAX_DIMS = 8  # shapes are padded to this many axes, so each kernel compiles once per dtype


def prod(shape):
    return math.prod(shape)


def contiguous_strides(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


def broadcast_strides(shape, out_shape):
    """Strides that read an array of ``shape`` (contiguous) at every index of ``out_shape``."""
    pad = len(out_shape) - len(shape)
    full = (1,) * pad + tuple(shape)
    return tuple(0 if n == 1 else s for n, s in zip(full, contiguous_strides(full), strict=True))


def dims(shape, *strides):
    """Shape and strides as int tuples of a fixed length, so a GPU kernel compiles once for all
    ranks (left-padded with size-1 axes). The simulator gets the same length: its launches then
    have the argument types a GPU's have, which the compile check (``check-cuda``) compiles."""
    n = len(shape)
    if n > MAX_DIMS:
        raise ValueError(f"CUDA arrays support at most {MAX_DIMS} dimensions, got shape {shape}")
    pad = MAX_DIMS - n
    out = [tuple([1] * pad + [int(s) for s in shape])]
    out += [tuple([0] * pad + [int(s) for s in st]) for st in strides]
    return out


@cuda.jit(device=True)
def offset(i, shape, strides):
    """Offset of the ``i``-th element (C order over ``shape``) in an array with ``strides``."""
    off = 0
    for k in range(len(shape) - 1, -1, -1):
        n = shape[k]
        off += (i % n) * strides[k]
        i //= n
    return off


@cuda.jit
def copy_kernel(dst, d0, ds, src, s0, ss, shape, n):
    """dst[d0 + off(i, ds)] = src[s0 + off(i, ss)] for the n elements of ``shape``."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, step):
        dst[d0 + offset(i, shape, ds)] = src[s0 + offset(i, shape, ss)]


@cuda.jit
def fill_kernel(out, value):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = value


def copy(dst, d0, ds, src, s0, ss, shape):
    """Strided copy between the flat buffers ``src`` and ``dst`` of the elements of ``shape``
    (strides in elements, bases as offsets)."""
    n = prod(shape)
    if n == 0:
        return
    shape, ds, ss = dims(shape, ds, ss)
    copy_kernel[launch(n)](dst, int(d0), ds, src, int(s0), ss, shape, n)


def fill(buf, value):
    """Set every element of the flat buffer ``buf`` to ``value`` (cast to its dtype)."""
    if buf.size:
        fill_kernel[launch(buf.size)](buf, buf.dtype.type(value))
