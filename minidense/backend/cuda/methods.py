"""NumPy's operators and methods on ``CudaArray``, installed once, here.

``gpu/array.py`` defines the type beneath both the kernels and this backend, because kernels
take and return it; its arithmetic (``a + b``, ``x.sum(axis=1)``, ``x[i] = v``...) needs this
backend's kernels, which the layer below cannot import. So the backend adds it to the type when
it is imported (``minidense.backend`` always is, before any array is computed with).
"""

import numpy as np

from ...gpu import CudaArray
from . import elementwise as E
from . import indexing, layout, linalg
from . import reduce as R

__all__ = ["install"]


def _binary(op, logical=False):
    return lambda self, other: E.binary(op, self, other, logical=logical)


def _reflected(op, logical=False):
    return lambda self, other: E.binary(op, other, self, logical=logical)


def _in_place(op):
    return lambda self, other: E.binary(op, self, other, out=self)


def _matmul(self, other):
    return linalg.matmul(self, other) if isinstance(other, CudaArray) else NotImplemented


def _rmatmul(self, other):
    return linalg.matmul(other, self) if isinstance(other, CudaArray) else NotImplemented


def _invert(self):
    if self.dtype.kind != "b":
        raise TypeError("~ is supported on bool CUDA arrays only")
    return E.unary("logical_not", self)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
        axes = axes[0]  # a tuple, list or array of axes
    return layout.transpose(self, None if axes is None or len(axes) == 0 else axes)


def _sum(self, axis=None, keepdims=False, dtype=None):
    return R.sum(self, axis, keepdims, dtype)


def _max(self, axis=None, keepdims=False):
    return R.max(self, axis, keepdims)


def _min(self, axis=None, keepdims=False):
    return R.min(self, axis, keepdims)


def _mean(self, axis=None, keepdims=False):
    return R.mean(self, axis, keepdims)


def _argmax(self, axis=None, keepdims=False):
    return R.argmax(self, axis, keepdims)


METHODS = {
    # arithmetic: NumPy's broadcasting and type rules (elementwise.py)
    "__add__": _binary("add"), "__radd__": _reflected("add"), "__iadd__": _in_place("add"),
    "__sub__": _binary("subtract"), "__rsub__": _reflected("subtract"),
    "__isub__": _in_place("subtract"),
    "__mul__": _binary("multiply"), "__rmul__": _reflected("multiply"),
    "__imul__": _in_place("multiply"),
    "__truediv__": _binary("divide"), "__rtruediv__": _reflected("divide"),
    "__itruediv__": _in_place("divide"),
    "__pow__": _binary("power"), "__rpow__": _reflected("power"), "__ipow__": _in_place("power"),
    "__neg__": lambda self: E.unary("negative", self), "__pos__": lambda self: self.copy(),
    "__abs__": lambda self: E.unary("absolute", self), "__invert__": _invert,
    "__matmul__": _matmul, "__rmatmul__": _rmatmul,
    # comparisons give bool arrays; &, |, ^ take bool arrays
    "__eq__": _binary("equal"), "__ne__": _binary("not_equal"), "__lt__": _binary("less"),
    "__le__": _binary("less_equal"), "__gt__": _binary("greater"),
    "__ge__": _binary("greater_equal"),
    "__and__": _binary("logical_and", True), "__rand__": _reflected("logical_and", True),
    "__or__": _binary("logical_or", True), "__ror__": _reflected("logical_or", True),
    "__xor__": _binary("logical_xor", True), "__rxor__": _reflected("logical_xor", True),
    # methods
    "astype": E.astype, "transpose": _transpose, "T": property(layout.transpose),
    "swapaxes": layout.swapaxes, "sum": _sum, "max": _max, "min": _min, "mean": _mean,
    "argmax": _argmax, "any": R.any, "all": R.all,
    "__getitem__": indexing.getitem, "__setitem__": indexing.setitem,
}  # fmt: skip


def install():
    for name, fn in METHODS.items():
        setattr(CudaArray, name, fn)
