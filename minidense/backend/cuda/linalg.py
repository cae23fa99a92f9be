"""``matmul`` with NumPy's rules (1-D operands are vectors, dtypes promote), on the GPU layer's
tiled matrix product."""

import numpy as np

from ... import gpu
from .elementwise import astype
from .operands import as_cuda

__all__ = ["matmul"]


def matmul(a, b):
    """NumPy's matmul: (..., M, K) @ (..., K, N) with broadcast batch dims; 1-D operands are
    vectors. float32 and float64."""
    a, b = as_cuda(a, "matmul"), as_cuda(b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions")
    dtype = np.result_type(a.dtype, b.dtype)
    if dtype.kind != "f":
        raise TypeError(f"CUDA matmul supports float32 and float64, got {a.dtype} and {b.dtype}")
    a2 = astype(a, dtype, copy=False)
    b2 = astype(b, dtype, copy=False)
    a2 = a2.reshape(1, a.shape[0]) if a.ndim == 1 else a2
    b2 = b2.reshape(b.shape[0], 1) if b.ndim == 1 else b2
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: mismatch in the core dimension, shapes {a.shape} and {b.shape}")
    out = gpu.matmul(a2, b2)
    if a.ndim == 1:
        out = out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = out.reshape(out.shape[:-1])
    return out
