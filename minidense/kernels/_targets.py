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

__all__ = [
    "unravel_nchw_cuda",
    "dual",
    "cpu_kernel",
    "is_device_array",
    "as_device",
    "grid_for",
    "Launch",
    "THREADS",
]

# Threads per block for the 1-D grid-stride kernels. The CUDA simulator runs one Python thread per
# CUDA thread, so it gets a few threads and at most two blocks (the loops cover any size).
_SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
GPU_THREADS = 128
THREADS = 16 if _SIMULATOR else GPU_THREADS


class Launch(tuple):
    """A launch configuration ``(blocks, threads)`` for ``kernel[config]`` that also carries
    ``gpu_threads``, the threads per block of the same launch on a GPU. Under the simulator the
    two differ; the compile check (``python -m minidense check-cuda``) records the launches there
    and computes each kernel's occupancy for the GPU's block."""

    def __new__(cls, blocks, threads, gpu_threads):
        config = super().__new__(cls, (blocks, threads))
        config.gpu_threads = gpu_threads
        return config


def _lock_simulator_shared_arrays():
    """Work around a race in Numba's CUDA simulator (numba-cuda 0.30): ``cuda.shared.array`` looks
    up, then stores, the block's array (keyed by the calling line) without a lock, so two simulated
    threads can each make their own "shared" tile and a tiled kernel reads tiles that were never
    written (rare wrong matmul results). Same lookup, under a lock."""
    import sys
    import threading

    from numba.cuda.simulator import kernelapi

    if getattr(kernelapi.FakeCUDAShared.array, "_minidense_locked", False):
        return
    unlocked, lock = kernelapi.FakeCUDAShared.array, threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # errors and dynamic shared memory: as before
            return unlocked(self, shape, dtype, alignment)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)  # the kernel line asking for it
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                if isinstance(dtype, kernelapi.types.Type):
                    dtype = kernelapi.numpy_support.as_dtype(dtype)
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res

    array._minidense_locked = True
    kernelapi.FakeCUDAShared.array = array


if _SIMULATOR:
    _lock_simulator_shared_arrays()


def dual(fn):
    """Return ``(cpu_version, cuda_version)`` of a scalar device function ``fn``."""
    return numba.njit(inline="always", cache=True)(fn), cuda.jit(device=True)(fn)


def unravel_nchw(e, C, H, W):
    """Flat row-major index ``e`` of an ``(N, C, H, W)`` array → ``(n, c, h, w)``: what every
    one-thread-per-element kernel does first."""
    return e // (W * H * C), (e // (W * H)) % C, (e // W) % H, e % W


unravel_nchw_cpu, unravel_nchw_cuda = dual(unravel_nchw)


def cpu_kernel(fn):
    """A parallel CPU kernel, cached on disk so a second process starts fast."""
    return numba.njit(parallel=True, cache=True, fastmath=False)(fn)


def is_device_array(a):
    """True for a Numba CUDA device array (real or simulated), False for NumPy arrays."""
    # numba.cuda.is_cuda_array is missing under the simulator, so duck-type instead.
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def grid_for(n, threads=THREADS):
    """Blocks for a grid-stride launch over ``n`` items (at least one block, capped)."""
    return max(1, min((n + threads - 1) // threads, 2 if _SIMULATOR else 65535))


def launch(n):
    """``(blocks, threads)`` of a 1-D grid-stride launch over ``n`` items: ``kernel[launch(n)]``.

    Under the CUDA simulator every CUDA thread is a Python thread, so it is two blocks of 16: the
    grid-stride loops still cover all ``n`` items (and cross block boundaries) in a fraction of
    the time.
    """
    return Launch(grid_for(n), THREADS, GPU_THREADS)


def as_device(a):
    """The raw Numba device array behind ``a`` (a ``CudaArray`` or a device array); kernels take
    either, this is for code that needs Numba's own device-array methods."""
    return getattr(a, "dev", a)
