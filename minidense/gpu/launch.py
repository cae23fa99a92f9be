"""The launch policy of every CUDA kernel in minidense, in one place.

Two shapes of launch:

- ``launch(n)``: a 1-D grid-stride launch over ``n`` items (``kernel[launch(n)](...)``): each
  thread starts at ``cuda.grid(1)`` and steps by ``cuda.gridsize(1)``, so any grid covers any ``n``;
- ``tiled(tiles)``: ``TILE x TILE`` threads a block for a tiled kernel (the matmul), a
  grid-stride loop over the tiles.

Under the CUDA simulator every CUDA thread is a Python thread, and a block costs more than a
thread: launches there are two blocks of four threads (the grid-stride loops still cover every
item, and cross a block boundary) and 4 x 4 tiles (small test matrices still span several tiles,
partial ones included).
"""

from .device import SIMULATOR

__all__ = ["Launch", "launch", "tiled", "grid_for", "THREADS", "GPU_THREADS", "TILE", "GPU_TILE"]

GPU_THREADS = 128  # threads per block of a 1-D launch on a GPU
THREADS = 4 if SIMULATOR else GPU_THREADS
GPU_TILE = 16  # edge of a tiled kernel's block, and of its shared-memory tiles, on a GPU
TILE = 4 if SIMULATOR else GPU_TILE
_MAX_BLOCKS = 2 if SIMULATOR else 65535


class Launch(tuple):
    """A launch configuration ``(blocks, threads)`` for ``kernel[config]`` that also carries
    ``gpu_threads``, the threads per block of the same launch on a GPU. Under the simulator the
    two differ; the compile check (``python -m minidense check-cuda``) records the launches there
    and computes each kernel's occupancy for the GPU's block."""

    def __new__(cls, blocks, threads, gpu_threads):
        config = super().__new__(cls, (blocks, threads))
        config.gpu_threads = gpu_threads
        return config


def grid_for(n, threads=THREADS):
    """Blocks for a grid-stride launch over ``n`` items (at least one block, capped)."""
    return max(1, min((n + threads - 1) // threads, _MAX_BLOCKS))


def launch(n):
    """``(blocks, threads)`` of a 1-D grid-stride launch over ``n`` items: ``kernel[launch(n)]``."""
    return Launch(grid_for(n), THREADS, GPU_THREADS)


def tiled(tiles):
    """A launch of ``TILE x TILE`` threads a block over ``tiles`` tiles (a grid-stride loop)."""
    return Launch(max(1, min(tiles, _MAX_BLOCKS)), (TILE, TILE), GPU_TILE**2)
