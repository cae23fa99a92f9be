"""Making tensors: from data (``tensor``, ``as_tensor``), filled (``zeros``, ``ones``, ``full``,
``arange``, ``zeros_like``, ``ones_like``) and random (``randn``, ``rand``, from the seedable
generator of ``tensor.manual_seed``). New tensors are on the CPU; float ones are float32 unless a
dtype says otherwise."""

import numpy as np

from . import checks
from .tensor import Tensor, as_dtype, default_generator, to_array

__all__ = [
    "tensor", "as_tensor", "zeros", "ones", "full", "arange", "zeros_like", "ones_like",
    "randn", "rand",
]  # fmt: skip

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _shape_arg(shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    for s in shape:
        if not isinstance(s, int | np.integer) or s < 0:
            raise ValueError(f"shape must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def _float_dtype(dtype):
    dtype = as_dtype(np.float32 if dtype is None else dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (number, nested list or array)."""
    arr = to_array(data, dtype).copy()
    return Tensor(arr, requires_grad=requires_grad)


def as_tensor(data, dtype=None):
    """``data`` as a Tensor, without copying where possible (Tensors pass through)."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == as_dtype(dtype)):
        return data
    return Tensor(data, dtype=dtype)


def zeros(*shape, dtype=None, requires_grad=False):
    return Tensor(np.zeros(_shape_arg(shape), _float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return Tensor(np.ones(_shape_arg(shape), _float_dtype(dtype)), requires_grad)


def full(shape, value, dtype=None, requires_grad=False):
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"full: value must be a number, got {type(value).__name__} ({value!r})")
    return Tensor(np.full(_shape_arg((shape,)), value, _float_dtype(dtype)), requires_grad)


def zeros_like(t, requires_grad=False):
    """Zeros of ``t``'s shape and dtype (on the CPU)."""
    return Tensor(np.zeros(checks.tensor(t, "zeros_like", "t").shape, t.dtype), requires_grad)


def ones_like(t, requires_grad=False):
    return Tensor(np.ones(checks.tensor(t, "ones_like", "t").shape, t.dtype), requires_grad)


def arange(*args, dtype=None):
    """``arange(stop)``, ``arange(start, stop[, step])`` as NumPy's (float arguments: float32)."""
    if not 1 <= len(args) <= 3 or not all(
        isinstance(a, int | float | np.integer | np.floating) and not isinstance(a, bool)
        for a in args
    ):
        raise TypeError(f"arange takes 1 to 3 numbers (start, stop, step), got {args!r}")
    if len(args) == 3 and args[2] == 0:
        raise ValueError("arange: step must not be zero")
    data = np.arange(*args)
    if dtype is None and data.dtype.kind == "f":
        data = data.astype(np.float32)  # float arguments: the float32 default, as everywhere
    return Tensor(data, dtype=dtype)


def _rng(generator):
    if generator is None:
        return default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"generator must be a numpy.random.Generator (np.random.default_rng(seed)), got "
            f"{type(generator).__name__}"
        )
    return generator


def randn(*shape, dtype=None, requires_grad=False, generator=None):
    """Standard-normal samples from ``generator`` (default: the seedable global one)."""
    rng = _rng(generator)
    data = rng.standard_normal(_shape_arg(shape)).astype(_float_dtype(dtype))
    return Tensor(data, requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None):
    """Uniform [0, 1) samples from ``generator`` (default: the seedable global one)."""
    rng = _rng(generator)
    data = rng.random(_shape_arg(shape)).astype(_float_dtype(dtype))
    return Tensor(data, requires_grad)
