"""Tensor's math methods - operators, reductions, shape methods, activations, casts - installed
on ``Tensor`` once, when ``minidense.ops`` is imported (``minidense`` always imports it).

Each one is a Function of this package: ``x + y`` is ``Add.apply``, ``x.sum()`` is ``ops.reduce.sum``.
``Tensor`` (tensor.py) cannot import the ops because the ops import ``Tensor``; so the ops add
these methods to it, here, in one place - the way the CUDA backend adds NumPy's operators to
``CudaArray``.
"""

import numpy as np

from ..tensor import Tensor, as_dtype, check_dtype
from . import activation as A
from . import elementwise as E
from . import matmul as M
from . import reduce as R
from . import shape as S

__all__ = ["TensorMath", "install"]


class TensorMath:
    """The methods; ``install`` copies them onto ``Tensor``."""

    # ----------------------------------------------------------------- conversion
    def astype(self, dtype):
        return S.Cast.apply(self, check_dtype(as_dtype(dtype)))

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return E.Add.apply(*self._pair(other))

    def __radd__(self, other):
        return E.Add.apply(*self._pair(other, reflected=True))

    def __mul__(self, other):
        return E.Mul.apply(*self._pair(other))

    def __rmul__(self, other):
        return E.Mul.apply(*self._pair(other, reflected=True))

    def __truediv__(self, other):
        a, b = self._pair(other)
        if a.dtype.kind != "f":  # true division of integers gives floats: float32 by default
            a, b = a.astype(np.float32), b.astype(np.float32)
        return E.Div.apply(a, b)

    def __pow__(self, exponent):
        if isinstance(exponent, int | float | np.integer | np.floating):
            if self.dtype.kind != "f":  # integers stay integers for integer powers, as PyTorch
                if float(exponent).is_integer() and exponent >= 0:
                    return Tensor._wrap(self.data ** int(exponent))
                return self.astype(np.float32) ** exponent
            return E.PowScalar.apply(self, float(exponent))
        return E.Pow.apply(*self._pair(exponent))

    def __rpow__(self, base):
        return E.Pow.apply(*self._pair(base, reflected=True))

    def __matmul__(self, other):
        return M.MatMul.apply(*self._pair(other))  # int @ float32 is float32, as for a * b

    def __rmatmul__(self, other):
        return M.MatMul.apply(*self._pair(other, reflected=True))

    def __neg__(self):
        return E.Neg.apply(self)

    # ----------------------------------------------------------------- the op functions
    # An op whose first argument is the tensor is its method as it stands: ``x.sum(1)`` is
    # ``reduce.sum(x, 1)``, with the same arguments and defaults.
    __getitem__ = S.getitem
    to = S.to_device
    sum, mean, max, min = R.sum, R.mean, R.max, R.min
    flatten, transpose, unsqueeze, squeeze = S.flatten, S.transpose, S.unsqueeze, S.squeeze
    exp, log, sqrt, abs, clamp = E.exp, E.log, E.sqrt, E.abs, E.clamp
    relu, sigmoid, tanh, softmax, log_softmax = A.relu, A.sigmoid, A.tanh, A.softmax, A.log_softmax

    # ----------------------------------------------------------------- shape, variadic
    def reshape(self, *shape):
        return S.reshape(self, shape[0] if len(shape) == 1 else shape)

    view = reshape

    def permute(self, *axes):
        return S.permute(self, axes[0] if len(axes) == 1 else axes)


def install():
    for name, member in vars(TensorMath).items():
        if callable(member):  # the methods, not the class's own __module__, __dict__, ...
            setattr(Tensor, name, member)
