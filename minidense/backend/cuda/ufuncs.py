"""NumPy's ufuncs for the GPU, one scalar function each: plain Python, written once and compiled
with ``cuda.jit(device=True)``. ``DEVICE_FNS`` maps NumPy's name to the compiled function; the
kernel factories of ``elementwise.py`` and ``reduce.py`` turn one into a kernel."""

import math

from numba import cuda

__all__ = ["DEVICE_FNS"]


def _add(a, b):
    return a + b


def _subtract(a, b):
    return a - b


def _multiply(a, b):
    return a * b


def _divide(a, b):
    return a / b


def _power(a, b):
    return a**b


def _maximum(a, b):
    return a if (a >= b or a != a) else b  # NaN propagates, as np.maximum


def _minimum(a, b):
    return a if (a <= b or a != a) else b


def _equal(a, b):
    return a == b


def _not_equal(a, b):
    return a != b


def _less(a, b):
    return a < b


def _less_equal(a, b):
    return a <= b


def _greater(a, b):
    return a > b


def _greater_equal(a, b):
    return a >= b


def _logical_and(a, b):
    return (a != 0) and (b != 0)


def _logical_or(a, b):
    return (a != 0) or (b != 0)


def _logical_xor(a, b):
    return (a != 0) != (b != 0)


def _where(c, a, b):
    return a if c else b


def _clip(x, lo, hi):
    return _minimum_dev(_maximum_dev(x, lo), hi)  # np.clip = minimum(maximum(x, lo), hi)


def _identity(a):
    return a


def _negative(a):
    return -a


# The math below casts every constant to the argument's type T: compiled code would otherwise
# promote a float32 compared with 0, or returned beside math.inf, to float64 (slow on most GPUs).


def _absolute(a):
    return -a if a < type(a)(0) else a


def _sign(a):
    T = type(a)
    if a != a:
        return a
    return T(1) if a > T(0) else (T(-1) if a < T(0) else T(0))


def _exp(a):
    # Past log(largest value) the result is inf, as on the GPU; the simulator's math.exp would
    # raise (float64) or overflow when stored (float32). A 24-bit significand means float32.
    T = type(a)
    limit = T(88.72283) if T(16777217) == T(16777216) else T(709.782712893384)
    if a > limit:
        return T(math.inf)
    return math.exp(a)


def _log(a):
    T = type(a)
    return math.log(a) if a > T(0) else (T(-math.inf) if a == T(0) else T(math.nan))


def _log1p(a):
    T = type(a)
    return math.log1p(a) if a > T(-1) else (T(-math.inf) if a == T(-1) else T(math.nan))


def _sqrt(a):
    return math.sqrt(a) if a >= type(a)(0) else type(a)(math.nan)


def _tanh(a):
    return math.tanh(a)


def _logical_not(a):
    return not a


def _nonzero(a):
    return a != 0


_maximum_dev = cuda.jit(device=True)(_maximum)
_minimum_dev = cuda.jit(device=True)(_minimum)

DEVICE_FNS = {
    name: cuda.jit(device=True)(fn)
    for name, fn in {
        "add": _add, "subtract": _subtract, "multiply": _multiply, "divide": _divide,
        "power": _power, "maximum": _maximum, "minimum": _minimum, "equal": _equal,
        "not_equal": _not_equal, "less": _less, "less_equal": _less_equal, "greater": _greater,
        "greater_equal": _greater_equal, "logical_and": _logical_and, "logical_or": _logical_or,
        "logical_xor": _logical_xor, "where": _where, "clip": _clip, "identity": _identity,
        "negative": _negative, "absolute": _absolute, "sign": _sign, "exp": _exp, "log": _log,
        "log1p": _log1p, "sqrt": _sqrt, "tanh": _tanh, "logical_not": _logical_not,
        "nonzero": _nonzero,
    }.items()
}  # fmt: skip
