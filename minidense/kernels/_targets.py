"""Compile one per-element function for both targets, and tell the targets' arrays apart.

The rule of this package (DESIGN.md, "One kernel body, two targets"): the math of one output
element is written once, as a plain Python function over scalars and arrays, and compiled twice::

    def bilinear_weights(y, x, H, W): ...              # plain Python, written once
    bilinear_weights_cpu, bilinear_weights_cuda = dual(bilinear_weights)

The CPU twin is inlined into a ``numba.njit(parallel=True)`` loop over ``prange``; the CUDA twin is
a ``cuda.jit(device=True)`` function called from a grid-stride ``cuda.jit`` kernel.
"""

import numba
import numpy as np
from numba import cuda

__all__ = ["dual", "cpu_kernel", "is_device_array", "grid_for", "THREADS"]

THREADS = 128  # threads per block for the 1-D grid-stride kernels


def dual(fn):
    """Return ``(cpu_version, cuda_version)`` of a scalar device function ``fn``."""
    return numba.njit(inline="always", cache=True)(fn), cuda.jit(device=True)(fn)


def cpu_kernel(fn):
    """A parallel CPU kernel, cached on disk so a second process starts fast."""
    return numba.njit(parallel=True, cache=True, fastmath=False)(fn)


def is_device_array(a):
    """True for a Numba CUDA device array (real or simulated), False for NumPy arrays."""
    # numba.cuda.is_cuda_array is missing under the simulator, so duck-type instead.
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def grid_for(n, threads=THREADS):
    """Blocks for a grid-stride launch over ``n`` items (at least one block, capped)."""
    return max(1, min((n + threads - 1) // threads, 65535))
