"""Array storage and generic math, one array module per device.

Ops never call NumPy directly: they ask for the *array module* of their inputs,

    xp = array_module(x)
    y = xp.exp(x - x.max(axis=1, keepdims=True))

The contract a backend keeps is NumPy's surface, in two listed parts:

- the functions named in ``PRIMITIVES``, with NumPy's signatures, broadcasting and dtype rules
  (``tests/test_architecture.py`` checks that the ops call no other);
- the array methods and operators the ops use (arithmetic, comparisons, indexing, ``astype``,
  ``reshape``, ``transpose``, ``sum``/``max``/``min``/``mean``/``argmax``, ``copy``), which the
  CUDA backend installs on ``CudaArray`` from one table (``cuda/methods.py``).

On the CPU the module is NumPy itself (plus ``add_at``); on the GPU it is ``backend/cuda/``, on our
own kernels. Adding a backend: a package ``backend/<device>/`` with every name in ``PRIMITIVES``,
an array type with those methods, an entry in ``_MODULES`` below, and ``device_of`` recognising
its arrays. The dense kernels in ``minidense.kernels`` dispatch on their own.
"""

import numpy as np

from ..gpu import CudaArray, is_device_array
from . import cuda

# The small set of generic primitives that every op lowers to (besides the hand-written kernels).
PRIMITIVES = (
    # creation
    "empty", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "asarray",
    # elementwise
    "add", "subtract", "multiply", "divide", "negative", "power", "exp", "log", "log1p", "sqrt",
    "abs", "sign", "tanh", "maximum", "minimum", "where", "clip", "logical_and", "logical_not",
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    # reductions
    "sum", "max", "min", "argmax",
    # linear algebra and layout
    "matmul", "reshape", "transpose", "concatenate", "pad", "broadcast_to", "take_along_axis",
    "put_along_axis", "add_at",
)  # fmt: skip


def _add_at(target, index, values):
    """``target[index] += values`` with repeated indices accumulated (unlike fancy assignment)."""
    np.add.at(target, index, values)


class _CpuModule:
    """NumPy, plus the few primitives NumPy spells differently."""

    def __getattr__(self, name):
        return getattr(np, name)

    add_at = staticmethod(_add_at)


cpu = _CpuModule()
_MODULES = {"cpu": cpu, "cuda": cuda}


def get(device):
    """The array module for ``device`` ("cpu" or "cuda"); "cuda" raises without a GPU."""
    if device == "cuda":
        cuda.require_gpu()
        return cuda
    try:
        return _MODULES[device]
    except KeyError:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}") from None


def device_of(array):
    """The device name of a raw array."""
    return "cuda" if is_device_array(array) else "cpu"


def array_module(*arrays):
    """The array module that handles ``arrays`` (all on one device)."""
    for a in arrays:
        if is_device_array(a):
            return cuda
    return cpu


def as_array(array):
    """``array`` as an array the ops can compute with: a raw Numba device array that a user
    hands over becomes a ``CudaArray`` (a view, no copy); anything else passes unchanged."""
    if isinstance(array, np.ndarray | CudaArray) or not is_device_array(array):
        return array
    return CudaArray.from_device(array)


def shares_memory(a, b):
    """Whether raw arrays ``a`` and ``b`` (may) overlap in memory: a view of one another, or of a
    common base. Device arrays overlap when they are views of one allocation."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a is b or np.may_share_memory(a, b)
    owner = getattr(a, "_owner", None)
    return owner is not None and owner is getattr(b, "_owner", None)


def on_device_of(value, like):
    """``value`` (a number or host array) on the device of the raw array ``like``.

    For op operands: on the GPU a 0-d value comes from a cache of constants (scalars recur in
    every step), so the result must be read, never written in place."""
    if not is_device_array(like) or is_device_array(value):
        return value
    value = np.asarray(value)
    return cuda.constant(value.item(), value.dtype) if value.ndim == 0 else cuda.asarray(value)


def move(array, device):
    """A copy of ``array`` on ``device`` ("cpu": a NumPy array, "cuda": a CudaArray); no copy
    when it is there already."""
    if device == "cpu":
        return array if not is_device_array(array) else array.copy_to_host()
    if device == "cuda":
        get("cuda")
        return as_array(array) if is_device_array(array) else cuda.asarray(np.asarray(array))
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
