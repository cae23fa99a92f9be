"""The CUDA array module: NumPy's names over ``CudaArray`` (``minidense.gpu``), on our own Numba
kernels. ``array_module(x)`` returns this module for a device array, so an op written as
``xp.exp(x)``, ``x.sum(axis=1)`` or ``a + b`` runs here on the GPU as it runs in NumPy on the CPU.

One file per idea:

=================  ===============================================================================
``ufuncs``         the scalar function of each ufunc, written once, compiled for the device
``operands``       what the functions accept (scalars become cached constants) and NumPy's type
                   promotion
``elementwise``    one kernel per ufunc from a factory: map, zip (broadcasting), zip3 (where, clip)
``creation``       asarray, empty, zeros, full, arange, ...
``layout``         reshape (a view); transpose, broadcast_to, concatenate, stack, pad (strided copies)
``reduce``         sum, max, min, mean, argmax
``indexing``       x[index], x[index] = v, take/put_along_axis, add_at
``linalg``         matmul
``methods``        NumPy's operators and methods, installed on CudaArray
=================  ===============================================================================

Beneath it, ``minidense.gpu`` holds what the kernels share with it: the array type, the launch
policy, the strided copy, the fill and the tiled matmul.
"""

from ...gpu import SIMULATOR, CudaArray, is_available, require_gpu
from . import methods
from .creation import (
    arange,
    asarray,
    empty,
    empty_like,
    full,
    full_like,
    ones,
    ones_like,
    to_host,
    zeros,
    zeros_like,
)
from .elementwise import (
    abs,
    absolute,
    add,
    clip,
    divide,
    equal,
    exp,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    power,
    sign,
    sqrt,
    subtract,
    tanh,
    true_divide,
    where,
)
from .indexing import add_at, put_along_axis, take_along_axis
from .layout import (
    ascontiguousarray,
    broadcast_to,
    concatenate,
    copy,
    pad,
    reshape,
    stack,
    swapaxes,
    transpose,
)
from .linalg import matmul
from .operands import constant
from .reduce import amax, amin, argmax, max, mean, min, sum

methods.install()

__all__ = [
    "CudaArray", "SIMULATOR", "is_available", "require_gpu", "constant", "to_host",
    "asarray", "empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like",
    "full_like", "arange", "copy", "ascontiguousarray",
    "add", "subtract", "multiply", "divide", "true_divide", "power", "maximum", "minimum",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
    "logical_or", "logical_not", "negative", "absolute", "abs", "sign", "exp", "log", "log1p",
    "sqrt", "tanh", "where", "clip",
    "sum", "max", "min", "amax", "amin", "mean", "argmax",
    "reshape", "transpose", "swapaxes", "broadcast_to", "concatenate", "stack", "pad", "matmul",
    "take_along_axis", "put_along_axis", "add_at",
]  # fmt: skip
