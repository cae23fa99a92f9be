"""Compatibility with Numba's CUDA simulator: what it needs that a GPU does not. Nothing here
changes what a kernel computes; on a GPU this module does nothing.

- ``KernelArgument``: the base class of ``CudaArray``. A GPU kernel reads any argument through
  its ``__cuda_array_interface__``; the simulator instead asks an "argument hint" for the array to
  hand over (``to_device``), so under the simulator ``CudaArray`` is one.
- The shared-memory lock below (numba-cuda 0.30).
"""

import sys
import threading

import numpy as np

from .device import SIMULATOR

__all__ = ["KernelArgument"]

if SIMULATOR:
    from numba.cuda.simulator import kernelapi
    from numba.cuda.simulator.args import ArgHint as KernelArgument
else:
    KernelArgument = object


def _lock_shared_arrays():
    """Work around a race in the simulator: ``cuda.shared.array`` looks up, then stores, the
    block's array (keyed by the calling line) without a lock, so two simulated threads can each
    make their own "shared" tile and a tiled kernel reads tiles that were never written (rare
    wrong matmul results). Same lookup, under a lock."""
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


if SIMULATOR:
    _lock_shared_arrays()
