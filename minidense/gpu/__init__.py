"""The GPU layer: what both the CUDA backend (``minidense.backend.cuda``) and the kernels
(``minidense.kernels``) stand on, written once.

=====================  ===========================================================================
``device``             ``SIMULATOR``, the one switch; ``is_available``, ``require_gpu``
``simulator_compat``   what Numba's CUDA simulator needs that a GPU does not (compatibility only)
``launch``             the launch policy: ``launch(n)``, ``tiled(tiles)``, threads and tile sizes
``array``              ``CudaArray``, the one device-array type kernels take and return
``layout``             shapes and strides, the one strided copy and the one fill kernel
``matmul``             the one tiled matrix product
=====================  ===========================================================================

It imports nothing else of minidense.
"""

from .array import CudaArray, asarray, empty, is_device_array, to_device, to_host, zeros
from .device import SIMULATOR, is_available, require_gpu
from .launch import GPU_THREADS, GPU_TILE, THREADS, TILE, Launch, grid_for, launch, tiled
from .matmul import matmul

__all__ = [
    "CudaArray", "asarray", "empty", "zeros", "to_device", "to_host", "is_device_array",
    "SIMULATOR", "is_available", "require_gpu",
    "Launch", "launch", "tiled", "grid_for", "THREADS", "GPU_THREADS", "TILE", "GPU_TILE",
    "matmul",
]  # fmt: skip
