"""Array storage and generic math, one module per device.

Ops never call NumPy directly: they ask for the *array module* of their inputs,

    xp = array_module(x)
    y = xp.exp(x)

and use only the primitives listed in ``PRIMITIVES``. On the CPU that module is NumPy itself; a
CUDA backend is a module that implements the same names on Numba device arrays.

Adding a backend: write ``backend/<device>.py`` exposing every name in ``PRIMITIVES`` with NumPy's
signature and semantics (broadcasting included), register it in ``_MODULES`` below, and make
``device_of`` recognise its arrays. The dense kernels in ``minidense.kernels`` dispatch on their own.
"""

import numpy as np

from ..kernels._targets import is_device_array

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
_MODULES = {"cpu": cpu}


def get(device):
    """The array module for ``device`` ("cpu" or "cuda")."""
    if device == "cuda":
        raise NotImplementedError(
            "the generic CUDA backend is not available yet: keep tensors on device='cpu' "
            "(the dense and RoI kernels have CUDA twins that are tested on their own)"
        )
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
            return get("cuda")
    return cpu
