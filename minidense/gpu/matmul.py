"""The one tiled matrix product of the GPU side, used by the CUDA backend (``xp.matmul``) and by
the convolution kernels alike.

``matmul(a, b, trans_a, trans_b)`` is ``op(a) @ op(b)`` with ``op`` a transpose when asked (read
in place, no copy) and NumPy's broadcasting of the batch axes: ``(g, M, K)`` against
``(N, g, K, L)`` gives ``(N, g, M, L)``.

The kernel: a block of ``TILE x TILE`` threads computes one ``TILE x TILE`` tile of one output
matrix at a time (a grid-stride loop over the tiles of every batch entry), walking along K a tile
at a time: it loads a tile of ``op(a)`` and one of ``op(b)`` into shared memory, syncs, and
accumulates their product (``acc += ta[ty, kk] * tb[kk, tx]``), one output element per thread.
"""

import numba
import numpy as np
from numba import cuda

from . import layout
from .array import CudaArray, asarray
from .launch import TILE, tiled
from .layout import offset

__all__ = ["matmul"]


def _make_matmul(nb_dtype):
    """A tiled matmul for one dtype (the shared tiles need it at compile time)."""

    @cuda.jit
    def matmul_kernel(a, b, out, M, K, N, batch, sa, sb, nbatch, trans_a, trans_b):
        # out[z] = op(a[z]) @ op(b[z]) for each of the nbatch (broadcast) batch entries, flat
        # row-major buffers; a[z] starts at offset(z, batch, sa), b[z] at offset(z, batch, sb).
        ta = cuda.shared.array((TILE, TILE), nb_dtype)
        tb = cuda.shared.array((TILE, TILE), nb_dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tiles_n = (N + TILE - 1) // TILE
        tiles_per_matrix = ((M + TILE - 1) // TILE) * tiles_n
        for tile in range(cuda.blockIdx.x, tiles_per_matrix * nbatch, cuda.gridDim.x):
            z = tile // tiles_per_matrix
            t = tile - z * tiles_per_matrix
            row = (t // tiles_n) * TILE + ty
            col = (t % tiles_n) * TILE + tx
            oa = offset(z, batch, sa)
            ob = offset(z, batch, sb)
            acc = nb_dtype(0)
            for k0 in range(0, K, TILE):
                k = k0 + tx
                if row < M and k < K:
                    ta[ty, tx] = a[oa + k * M + row] if trans_a else a[oa + row * K + k]
                else:
                    ta[ty, tx] = nb_dtype(0)
                k = k0 + ty
                if col < N and k < K:
                    tb[ty, tx] = b[ob + col * K + k] if trans_b else b[ob + k * N + col]
                else:
                    tb[ty, tx] = nb_dtype(0)
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += ta[ty, kk] * tb[kk, tx]
                cuda.syncthreads()
            if row < M and col < N:
                out[(z * M + row) * N + col] = acc

    return matmul_kernel


_KERNELS = {}  # dtype -> kernel


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """``op(a) @ op(b)`` for float CUDA arrays of one dtype, at least 2-D, batch axes broadcast.

    a (..., M, K) (``trans_a``: (..., K, M)), b (..., K, N) (``trans_b``: (..., N, K)) ->
    (batch..., M, N), written into ``out`` (a CudaArray of that shape) when given.
    """
    a, b = asarray(a), asarray(b)
    if a.dtype != b.dtype or a.dtype.kind != "f":
        raise TypeError(f"matmul: float operands of one dtype expected, got {a.dtype}, {b.dtype}")
    M, K = (a.shape[-1], a.shape[-2]) if trans_a else a.shape[-2:]
    Kb, N = (b.shape[-1], b.shape[-2]) if trans_b else b.shape[-2:]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) if K == Kb else None
    if batch is None:
        raise ValueError(
            f"matmul: shapes {a.shape} (trans={trans_a}) and {b.shape} (trans={trans_b}) do not "
            "multiply"
        )
    shape = batch + (M, N)
    if out is None:
        out = CudaArray.empty(shape, a.dtype)
    elif tuple(out.shape) != shape:
        raise ValueError(f"matmul: out has shape {tuple(out.shape)}, expected {shape}")
    if out.size == 0:
        return out
    if K == 0:
        out.fill(0)
        return out
    sa = tuple(s * M * K for s in layout.broadcast_strides(a.shape[:-2], batch))
    sb = tuple(s * K * N for s in layout.broadcast_strides(b.shape[:-2], batch))
    dims, sa, sb = layout.dims(batch, sa, sb)
    kernel = _KERNELS.get(a.dtype)
    if kernel is None:
        kernel = _KERNELS[a.dtype] = _make_matmul(numba.from_dtype(a.dtype))
    nbatch = layout.prod(batch)
    tiles = ((M + TILE - 1) // TILE) * ((N + TILE - 1) // TILE) * nbatch
    kernel[tiled(tiles)](
        a._buf, b._buf, out._buf, M, K, N, dims, sa, sb, nbatch, bool(trans_a), bool(trans_b)
    )
    return out
