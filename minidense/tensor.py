"""``Tensor``: an array with a device, a dtype and, optionally, a gradient; and the seedable
random generator that ``randn``, ``rand`` (``creation.py``) and the initialisers draw from.

Floating tensors are float32 by default (float64 for gradient checks); integer tensors hold labels
and indices and never require grad. Operators record the graph through ``minidense.ops``.
"""

import numpy as np

from . import autograd, views
from .backend import array_module, as_array, device_of, on_device_of
from .inplace import Mutation

__all__ = ["Tensor", "manual_seed", "default_generator", "to_array", "as_dtype", "check_dtype"]

_ALLOWED_KINDS = "biuf"  # bool, signed, unsigned, float


def as_dtype(dtype):
    """``dtype`` as a NumPy dtype, or a TypeError naming the argument."""
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy dtype or its name, got {dtype!r}") from None


def check_dtype(dtype):
    """``dtype`` if tensors may hold it: float32, float64, an integer type or bool."""
    if dtype.kind not in _ALLOWED_KINDS or dtype == np.float16:
        raise TypeError(f"dtype must be float32, float64, an integer type or bool, got {dtype}")
    return dtype


def to_array(data, dtype=None, name="data"):
    """Convert user data to an array we accept, or raise a TypeError that says what was wrong."""
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "copy_to_host") and not isinstance(data, np.ndarray):
        arr = as_array(data)  # a device array: it stays on the device
        if dtype is not None:
            arr = arr.astype(check_dtype(as_dtype(dtype)), copy=False)
        return arr
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name} must be numeric (a number, list or array), got {e}") from None
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(
            f"{name} must be numeric (bool, int or float), got dtype {arr.dtype} "
            f"from {type(data).__name__}"
        )
    if dtype is not None:
        return arr.astype(check_dtype(as_dtype(dtype)), copy=False)
    if arr.dtype == np.float16:
        raise TypeError(
            f"{name} is float16, which minidense does not compute in; convert it with "
            ".astype(np.float32) first"
        )
    if arr.dtype.kind == "f":
        # Python floats and lists default to float32; arrays keep float32/float64 as given.
        return arr if isinstance(data, np.ndarray | np.generic) else arr.astype(np.float32)
    return arr


def _comparison(ufunc):
    """The comparison operator that runs ``ufunc`` (``"less"``, ...): a bool tensor, no graph."""
    return lambda self, other: self._compare(other, ufunc)


class Tensor(autograd.Variable, Mutation):
    """An n-dimensional array that can record the operations applied to it.

    ``data`` is the raw array (``np.ndarray`` on "cpu", ``CudaArray`` on "cuda"), ``grad`` a
    Tensor filled by ``backward()``. Here: the array's attributes, conversion, comparisons and the
    graph bookkeeping. In-place ops, ``.data`` and ``.grad`` assignment: ``minidense.inplace``
    (mixed in). The math methods (operators, ``sum``, ``reshape``, ``exp``, ``relu``, ``astype``,
    ``to``...) run ops, which import this class, so ``minidense.ops`` installs them
    (``ops/tensor_methods.py``).
    """

    __array_ufunc__ = None  # make ndarray (op) Tensor defer to Tensor's reflected operators

    def __init__(self, data, requires_grad=False, dtype=None):
        self._data = to_array(data, dtype)
        self._grad = None
        self._ctx = None  # the autograd Context that produced this tensor (None for leaves)
        self._out_index = 0
        self.requires_grad = False
        if not isinstance(requires_grad, bool | np.bool_):
            raise TypeError(f"requires_grad must be True or False, got {requires_grad!r}")
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array):
        """Wrap a raw array produced by an op (no validation, no copy)."""
        if isinstance(array, np.generic | float | int | bool):
            array = np.asarray(array)  # NumPy reductions return scalars; keep 0-d arrays
        t = cls.__new__(cls)
        t._data, t._grad, t._ctx, t._out_index, t.requires_grad = array, None, None, 0, False
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def size(self):
        return int(np.prod(self.data.shape, dtype=np.int64))

    @property
    def dtype(self):
        return np.dtype(self.data.dtype)

    @property
    def device(self):
        return device_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, separator=", ", threshold=50)
        extras = (
            "" if self.dtype == np.float32 or self.dtype.kind != "f" else f", dtype={self.dtype}"
        )
        if self.device != "cpu":
            extras += f", device={self.device!r}"
        if self.requires_grad:
            extras += ", requires_grad=True"
        return f"tensor({body}{extras})"

    # ----------------------------------------------------------------- autograd
    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise TypeError(
                f"only floating tensors can require grad, this one is {self.dtype}; "
                "convert it with .float() first"
            )
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor; scalars need no ``grad``."""
        autograd.backward(self, grad, retain_graph)

    def _accumulate_grad(self, g):
        # The gradient keeps the tensor's dtype, also when ``.grad`` was left in another one
        # (set by hand, or from before a cast): NumPy would promote float32 + float64 to float64.
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        if self._grad is None:
            self._grad = Tensor._wrap(g.copy())
        else:
            old = self._grad.data
            if old.dtype != self.dtype:
                old = old.astype(self.dtype)
            self._grad = Tensor._wrap(old + g)

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same data (and version counter), cut from the graph."""
        return views.detached(self, Tensor._wrap(self.data))

    # ----------------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (a host copy for device tensors)."""
        if isinstance(self.data, np.ndarray):
            return self.data
        return self.data.copy_to_host()

    def __array__(self, dtype=None, copy=None):
        """NumPy 2's protocol: ``copy=True`` always copies (``np.array(t)``), ``copy=None`` only
        when needed (``np.asarray(t)`` is a view of a CPU tensor), ``copy=False`` never: it raises
        ValueError where a copy is needed (a dtype change, or a device tensor)."""
        a = self.numpy()
        copied = a is not self.data  # a device tensor's host copy is already a new array
        if dtype is not None and np.dtype(dtype) != a.dtype:
            if copy is False:
                raise ValueError(
                    f"np.asarray(tensor, dtype={np.dtype(dtype)}, copy=False): converting a "
                    f"{self.dtype} tensor needs a copy"
                )
            return a.astype(dtype)
        if copied and copy is False:
            raise ValueError(
                f"np.asarray(tensor, copy=False): a {self.device!r} tensor can only be read into "
                "NumPy by copying it to the host"
            )
        return a.copy() if copy and not copied else a

    def item(self):
        if self.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, this one has shape {self.shape}"
            )
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return self.astype(np.int64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ----------------------------------------------------------------- operators
    def _operand(self, other):
        """Numbers and arrays meet a tensor in its own dtype; tensors must match exactly."""
        if isinstance(other, Tensor):
            return other
        if self.dtype.kind == "f":
            # Cast straight from the user's value: through the float32 default, a Python float
            # would be rounded before a float64 tensor sees it (x * 0.1 ≠ x * 0.1 in float64).
            arr = to_array(other, dtype=self.dtype, name="operand")
        else:
            arr = to_array(other, name="operand")
            if arr.dtype.kind == "f":
                arr = arr.astype(np.float32)
        return Tensor._wrap(on_device_of(arr, self.data))  # numbers join the tensor's device

    def _pair(self, other, reflected=False):
        """(left, right) operands of a binary op. An integer side meeting a float side is cast to
        the float dtype first, as PyTorch does (int + 0.5 is float32, not NumPy's float64)."""
        other = self._operand(other)
        a, b = (other, self) if reflected else (self, other)
        if a.dtype.kind != "f" and b.dtype.kind == "f":
            a = Tensor._wrap(a.data.astype(b.dtype))
        elif b.dtype.kind != "f" and a.dtype.kind == "f":
            b = Tensor._wrap(b.data.astype(a.dtype))
        return a, b

    def __sub__(self, other):
        a, b = self._pair(other)
        return a + (-b)

    def __rsub__(self, other):
        a, b = self._pair(other, reflected=True)
        return a + (-b)

    def __rtruediv__(self, other):
        a, b = self._pair(other, reflected=True)
        return a / b

    def _compare(self, other, name):
        other = self._operand(other)
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(
                f"{name}: shapes {self.shape} and {other.shape} do not broadcast"
            ) from None
        return Tensor._wrap(getattr(array_module(self.data), name)(self.data, other.data))

    __lt__, __le__ = _comparison("less"), _comparison("less_equal")
    __gt__, __ge__ = _comparison("greater"), _comparison("greater_equal")
    __eq__, __ne__ = _comparison("equal"), _comparison("not_equal")

    __hash__ = object.__hash__  # tensors are used as dict keys (optimizer state) by identity

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    # ----------------------------------------------------------------- methods
    def argmax(self, axis=None):
        if axis is not None and not (
            isinstance(axis, int | np.integer) and not isinstance(axis, bool)
            and -self.ndim <= axis < self.ndim
        ):  # fmt: skip
            raise ValueError(
                f"argmax: axis must be None or an int in [-{self.ndim}, {self.ndim}), got {axis!r}"
            )
        return Tensor._wrap(array_module(self.data).argmax(self.data, axis=axis))

    def any(self):
        return bool(np.any(self.numpy()))

    def all(self):
        return bool(np.all(self.numpy()))

    @property
    def T(self):
        return self.permute(tuple(range(self.ndim))[::-1])


# --------------------------------------------------------------------- the random generator
_generator = np.random.default_rng(0)


def default_generator():
    """The NumPy generator behind ``randn``/``rand`` and the layers' initialisers."""
    return _generator


def manual_seed(seed):
    """Reseed the default generator, so runs repeat exactly."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(seed)
    return _generator
