"""What the CUDA array functions accept, and NumPy's rules for the type of their result.

An operand is a ``CudaArray``, a raw Numba device array (wrapped, no copy when contiguous) or a
scalar; a scalar becomes a cached 0-d device constant of the other operand's dtype. Host arrays are
refused: data never moves to the GPU implicitly. Types promote as NumPy's do, with Python scalars
"weak" (``float32_array * 0.5`` stays float32).
"""

import numpy as np

from ...gpu import CudaArray, is_device_array

__all__ = [
    "is_scalar", "constant", "operand", "as_cuda", "result_dtype", "check_broadcastable",
    "norm_axes",
]  # fmt: skip


def is_scalar(x):
    return isinstance(x, bool | int | float | np.generic) or (
        isinstance(x, np.ndarray) and x.ndim == 0
    )


_CONSTANTS = {}


def constant(value, dtype):
    """A 0-d device array holding ``value`` as ``dtype``, from a cache (scalars recur in every
    step): read it, never write it in place."""
    dtype = np.dtype(dtype)
    key = (dtype.str, type(value), value)
    try:
        c = _CONSTANTS.get(key)
    except TypeError:  # unhashable, e.g. a 0-d ndarray
        c, key = None, None
    if c is None:
        c = CudaArray.from_host(np.asarray(value).astype(dtype).reshape(()))
        if key is not None and value == value:  # NaN keys would never match again
            if len(_CONSTANTS) > 4096:
                _CONSTANTS.clear()
            _CONSTANTS[key] = c
    return c


def operand(x, dtype):
    """A CudaArray for ``x``: CudaArrays pass, scalars become constants of ``dtype``."""
    if isinstance(x, CudaArray):
        return x
    if is_scalar(x):
        return constant(x.item() if isinstance(x, np.ndarray) else x, dtype)
    if is_device_array(x):
        return CudaArray.from_device(x)  # a raw Numba device array
    raise TypeError(
        f"cannot combine a CUDA array with {type(x).__name__}: move host data to the GPU first "
        "(Tensor.to('cuda')); NumPy arrays are not copied over implicitly"
    )


def as_cuda(x, what):
    """``x`` as a CudaArray (raw Numba device arrays are wrapped), or a TypeError naming ``what``."""
    if isinstance(x, CudaArray):
        return x
    if is_device_array(x):
        return CudaArray.from_device(x)
    raise TypeError(f"{what}: expected a CUDA array, got {type(x).__name__}")


def _dtype_of(x):
    if isinstance(x, CudaArray | np.ndarray | np.generic):
        return x.dtype
    return x  # a Python scalar: np.result_type treats it as "weak", as NumPy does


def result_dtype(*xs):
    return np.result_type(*[_dtype_of(x) for x in xs])


def check_broadcastable(shape, target, what):
    try:
        if np.broadcast_shapes(shape, target) != tuple(target):
            raise ValueError
    except ValueError:
        raise ValueError(f"cannot {what} shape {shape} into shape {target}") from None


def norm_axes(axis, ndim):
    """``axis`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % max(ndim, 1))
    if ndim == 0:
        return ()
    return tuple(sorted(set(out)))
