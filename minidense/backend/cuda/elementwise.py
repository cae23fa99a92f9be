"""Elementwise math on CudaArrays with NumPy's broadcasting and type rules: one kernel per
NumPy ufunc, made by a factory from its scalar function (``ufuncs.py``) on first use.

=====================  ======================================================================
``map``                out[i] = op(a[i])                          (unary math, casts)
``zip``                out[i] = op(a[i·sa], b[i·sb])              (same shape, or a 1-element input)
``zip_strided``        out[i] = op(a[off_a(i)], b[off_b(i)])       (broadcasting: stride 0 on a
                                                                    broadcast axis)
``zip3``               out[i] = op(a[off_a(i)], b[off_b(i)], c[off_c(i)])   (where, clip)
=====================  ======================================================================
"""

import numpy as np
from numba import cuda

from ...gpu import CudaArray, launch
from ...gpu import layout as L
from ...gpu.layout import offset
from .operands import as_cuda, is_scalar, operand, result_dtype
from .ufuncs import DEVICE_FNS

__all__ = [
    "kernel_for", "binary", "unary", "astype", "add", "subtract", "multiply", "divide",
    "true_divide", "power", "maximum", "minimum", "equal", "not_equal", "less", "less_equal",
    "greater", "greater_equal", "logical_and", "logical_or", "negative", "absolute", "abs",
    "sign", "exp", "log", "log1p", "sqrt", "tanh", "logical_not", "where", "clip",
]  # fmt: skip


def _make_map(op):
    @cuda.jit
    def map_kernel(out, a):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[i])

    return map_kernel


def _make_zip(op):
    @cuda.jit
    def zip_kernel(out, a, b, sa, sb):
        # sa, sb are 1 for a full input and 0 for a one-element input (a scalar).
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[i * sa], b[i * sb])

    return zip_kernel


def _make_zip_strided(op):
    @cuda.jit
    def zip_strided_kernel(out, a, b, shape, sa, sb):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[offset(i, shape, sa)], b[offset(i, shape, sb)])

    return zip_strided_kernel


def _make_zip3(op):
    @cuda.jit
    def zip3_kernel(out, a, b, c, shape, sa, sb, sc):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[offset(i, shape, sa)], b[offset(i, shape, sb)], c[offset(i, shape, sc)])

    return zip3_kernel


_KERNELS = {}


def kernel_for(factory, op):
    """The kernel ``factory`` makes from the ufunc named ``op``, built once and cached."""
    key = (factory, op)
    kern = _KERNELS.get(key)
    if kern is None:
        kern = _KERNELS[key] = factory(DEVICE_FNS[op])
    return kern


_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


def _accepts(x):
    return isinstance(x, CudaArray) or is_scalar(x)


def binary(op, a, b, out=None, logical=False):
    """Elementwise ``op(a, b)`` with NumPy broadcasting; ``out`` (one of the inputs) for ``op=``."""
    if not (_accepts(a) and _accepts(b)):
        other = b if isinstance(a, CudaArray) else a
        if isinstance(other, np.ndarray):
            operand(other, None)  # raises the TypeError that says how to move it
        return NotImplemented  # e.g. CudaArray * Tensor: the Tensor's reflected operator takes over
    common = result_dtype(a, b)  # Python scalars are "weak": float32 * 0.5 stays float32
    if logical and common != np.bool_:
        raise TypeError(f"{op} is supported on bool CUDA arrays only, got {common}")
    if logical or op in _COMPARISONS:
        result = np.dtype(np.bool_)
    elif op == "divide" and common.kind in "biu":
        result = np.dtype(np.float64)  # true division of integers, as NumPy
    else:
        result = common
    a, b = operand(a, common), operand(b, common)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if out is not None:
        if shape != out.shape:
            raise ValueError(
                f"non-broadcastable output: {op} of {a.shape} and {b.shape} into {out.shape}"
            )
        if np.can_cast(result, out.dtype, "same_kind") is False:
            raise TypeError(f"cannot cast {op} result {result} to {out.dtype} in place")
        if b._owner is out._owner and b is not out:
            b = b.copy()  # an overlapping view would be read while written
    else:
        out = CudaArray.empty(shape, result)
    n = out.size
    if n == 0:
        return out
    if all(x.shape == shape or x.size == 1 for x in (a, b)):
        kernel_for(_make_zip, op)[launch(n)](
            out._buf, a._buf, b._buf, int(a.size == n), int(b.size == n)
        )
    else:
        dims, sa, sb = L.dims(
            shape, L.broadcast_strides(a.shape, shape), L.broadcast_strides(b.shape, shape)
        )
        kernel_for(_make_zip_strided, op)[launch(n)](out._buf, a._buf, b._buf, dims, sa, sb)
    return out


_FLOAT_RESULT = {"exp", "log", "log1p", "sqrt", "tanh"}


def unary(op, a):
    a = as_cuda(a, op)
    if op in _FLOAT_RESULT:
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
        a = astype(a, dtype, copy=False)  # the math runs in its argument's type: ints as float64
    elif op == "logical_not":
        dtype = np.dtype(np.bool_)
    else:
        dtype = a.dtype
    out = CudaArray.empty(a.shape, dtype)
    if a.size:
        kernel_for(_make_map, op)[launch(a.size)](out._buf, a._buf)
    return out


def ternary(op, a, b, c, dtype):
    a, b, c = (operand(x, dtype) for x in (a, b, c))
    shape = np.broadcast_shapes(a.shape, b.shape, c.shape)
    out = CudaArray.empty(shape, dtype)
    if out.size:
        dims, sa, sb, sc = L.dims(shape, *(L.broadcast_strides(x.shape, shape) for x in (a, b, c)))
        kernel_for(_make_zip3, op)[launch(out.size)](
            out._buf, a._buf, b._buf, c._buf, dims, sa, sb, sc
        )
    return out


def astype(a, dtype, copy=True):
    """``a`` converted to ``dtype`` (to bool: ``a != 0``)."""
    dtype = np.dtype(dtype)
    if dtype == a.dtype:
        return a.copy() if copy else a
    out = CudaArray.empty(a.shape, dtype)
    if a.size:
        op = "nonzero" if dtype == np.bool_ else "identity"
        kernel_for(_make_map, op)[launch(a.size)](out._buf, a._buf)
    return out


def _ufunc(name, arity):
    """NumPy's function ``name`` of one or two arrays (the two broadcast)."""
    fn = (lambda a, b: binary(name, a, b)) if arity == 2 else (lambda a: unary(name, a))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"NumPy's ``{name}``."
    return fn


add = _ufunc("add", 2)
subtract = _ufunc("subtract", 2)
multiply = _ufunc("multiply", 2)
divide = true_divide = _ufunc("divide", 2)
power = _ufunc("power", 2)
maximum = _ufunc("maximum", 2)
minimum = _ufunc("minimum", 2)
equal = _ufunc("equal", 2)
not_equal = _ufunc("not_equal", 2)
less = _ufunc("less", 2)
less_equal = _ufunc("less_equal", 2)
greater = _ufunc("greater", 2)
greater_equal = _ufunc("greater_equal", 2)

negative = _ufunc("negative", 1)
absolute = abs = _ufunc("absolute", 1)  # abs: NumPy's other name
sign = _ufunc("sign", 1)
exp = _ufunc("exp", 1)
log = _ufunc("log", 1)
log1p = _ufunc("log1p", 1)
sqrt = _ufunc("sqrt", 1)
tanh = _ufunc("tanh", 1)


def _bool(x):
    if isinstance(x, CudaArray):
        return x if x.dtype == np.bool_ else astype(x, np.bool_)
    return bool(x)


def logical_and(a, b):
    return binary("logical_and", _bool(a), _bool(b), logical=True)


def logical_or(a, b):
    return binary("logical_or", _bool(a), _bool(b), logical=True)


def logical_not(a):
    return unary("logical_not", _bool(a))


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (all three broadcast)."""
    condition = as_cuda(condition, "where(condition)")
    return ternary("where", condition, a, b, result_dtype(a, b))


def clip(a, a_min, a_max):
    a = as_cuda(a, "clip")
    if a_min is None and a_max is None:
        raise ValueError("clip: one of a_min and a_max must be given")
    if a_min is None:
        return minimum(a, a_max)
    if a_max is None:
        return maximum(a, a_min)
    return ternary("clip", a, a_min, a_max, result_dtype(a, a_min, a_max))
