"""Which CUDA target runs: a GPU, Numba's CUDA simulator, or none. ``SIMULATOR`` is the one switch
the package reads; everything that differs under the simulator asks it."""

import numba
from numba import cuda

__all__ = ["SIMULATOR", "is_available", "require_gpu"]

# Numba reads NUMBA_ENABLE_CUDASIM once, when it is first imported; so does this.
SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

_AVAILABLE = None


def is_available():
    """True on a machine with a usable CUDA GPU, or under the Numba CUDA simulator."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = SIMULATOR or bool(cuda.is_available())
    return _AVAILABLE


def require_gpu():
    if not is_available():
        raise RuntimeError(
            "no CUDA GPU found: numba.cuda.is_available() is False (no NVIDIA GPU or driver). "
            "Keep tensors on 'cpu', or set NUMBA_ENABLE_CUDASIM=1 before importing minidense to "
            "run the CUDA code on Numba's (slow) CUDA simulator."
        )
