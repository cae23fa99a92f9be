"""conv2d's forward with stride 1 on large maps, without im2col: one matrix product per kernel
tap, all summed into one output ("kn2row" accumulation; CPU only).

Lay the zero-padded input out as rows of channels, every sample's padded plane flattened one
after the other: ``grid (C, N·Hp·Wp + tail)``. Output pixel ``(oh, ow)`` of sample ``n`` sits at
column ``q = n·Hp·Wp + oh·Wp + ow`` of an output grid ``(C_out, N·Hp·Wp)``, and tap ``(i, j)``
of the kernel reads, for every output column ``q`` at once, the input columns ``q + i·dh·Wp +
j·dw``: the grid itself, shifted. So::

    out_grid = Σ_taps  W[:, :, i, j] (C_out, C) @ grid[:, shift(i, j) : shift(i, j) + N·Hp·Wp]

Each shifted window is a plain strided matrix (its rows are the grid's rows), so BLAS reads it
in place and adds into ``out_grid`` itself (``gemm`` with beta = 1). The columns of ``out_grid``
that are not output pixels (``ow >= Wo``, ``oh >= Ho``) are computed and dropped when the output
is cut out of the grid (with the bias added on the way).

Against im2col + one product (``conv.py``) this writes and reads no ``C·kH·kW`` copy of the
input: on the U-Net's 32x32 to 128x128 maps the forward ran 1.1-1.7x faster (2 cores); on small
maps, or with an RGB input's 3 channels, the kH·kW products cost more than the columns they save,
so ``conv.py`` uses this path from ``MIN_POSITIONS`` output pixels and ``MIN_CHANNELS`` on. It
needs a BLAS ``gemm`` that accumulates, which NumPy does not expose: ``blas_gemm`` finds the one
in NumPy's own OpenBLAS; without it, ``conv.py`` keeps im2col.
"""

import ctypes
import functools
import glob
import os

import numpy as np
from numba import prange

from ._targets import cpu_kernel
from .conv_batch import chunks, workspace

__all__ = ["MIN_POSITIONS", "MIN_CHANNELS", "blas_gemm", "usable", "conv2d_forward_shifted"]

MIN_POSITIONS = 1024  # output pixels per map from which the tap products beat im2col (32x32)
MIN_CHANNELS = 4  # an RGB input's products (3 channels deep) ran 1.2-1.3x slower than im2col
GRID_BYTES = 16 << 20  # samples go through in chunks whose grids stay about this size

_ROW_MAJOR, _NO_TRANS = 101, 111
# NumPy 2's wheels ship OpenBLAS as scipy-openblas (prefixed names; "64_": 64-bit integers),
# NumPy 1's as openblas64_. (symbol, integer type), most likely first.
_I64, _I32 = ctypes.c_int64, ctypes.c_int
_GEMM_SYMBOLS = {
    np.dtype(t): ((f"scipy_cblas_{p}gemm64_", _I64), (f"scipy_cblas_{p}gemm", _I32),
                  (f"cblas_{p}gemm64_", _I64), (f"cblas_{p}gemm", _I32))
    for t, p in ((np.float32, "s"), (np.float64, "d"))
}  # fmt: skip


def _openblas_paths():
    """NumPy's bundled OpenBLAS (wheels: ``numpy.libs`` on Linux and Windows, ``.dylibs`` on
    macOS); empty for a NumPy built against another BLAS."""
    root = os.path.dirname(np.__file__)
    found = []
    for folder in (os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs")):
        found += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    return found


@functools.cache
def blas_gemm(dtype):
    """``cblas_?gemm`` of NumPy's OpenBLAS for ``dtype`` (float32 or float64) as a ctypes
    function, or None where there is none, or where it fails a small product (then conv2d keeps
    im2col)."""
    dtype = np.dtype(dtype)
    if dtype not in _GEMM_SYMBOLS:
        return None
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library, not a copy
        except OSError:
            continue
        for name, integer in _GEMM_SYMBOLS[dtype]:
            fn = getattr(lib, name, None)
            if fn is not None:
                ptr, i = ctypes.c_void_p, integer
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, i, i, i, scalar, ptr, i,
                               ptr, i, scalar, ptr, i]  # fmt: skip
                fn.restype = None
                if _computes_right(fn, dtype):
                    return fn
    return None


def _computes_right(gemm, dtype):
    """Whether ``gemm`` gives NumPy's answer on a small strided product with beta = 1 (a build
    whose integers are not the width we pass would refuse its arguments or compute garbage)."""
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(3, 4)[:, 1:3]  # a window, as the taps read
    out = np.ones((2, 2), dtype=dtype)
    gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 2, 2, 3, 1.0, a.ctypes.data, 3,
         b.ctypes.data, 4, 1.0, out.ctypes.data, 2)  # fmt: skip
    return bool(np.array_equal(out, a @ b + 1))


def usable(x, geometry, groups, out_hw):
    """Whether ``conv.py``'s forward takes this path: a host array of float32/64, stride 1, one
    group, a kernel larger than 1x1 or padded, a large enough map and enough input channels, and
    a BLAS to call."""
    return (
        isinstance(x, np.ndarray)
        and geometry.stride == (1, 1)
        and groups == 1
        and not geometry.pointwise
        and out_hw[0] * out_hw[1] >= MIN_POSITIONS
        and x.shape[1] >= MIN_CHANNELS
        and blas_gemm(x.dtype) is not None
    )


@cpu_kernel
def to_grid_cpu(x, grid, ph, pw, Hp, Wp):
    """x (N, C, H, W) -> grid (C, N·Hp·Wp + tail): each sample's zero-padded plane, flattened,
    one after another; the tail (the last taps read past the last plane) stays zero."""
    N, C, H, W = x.shape
    S = Hp * Wp
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        row = grid[c, n * S : (n + 1) * S]
        row[:] = 0
        for h in range(H):
            dst = row[(h + ph) * Wp + pw : (h + ph) * Wp + pw + W]
            src = x[n, c, h]
            for w in range(W):
                dst[w] = src[w]


@cpu_kernel
def from_grid_cpu(out_grid, bias, Wp, S, out):
    """out (N, C_out, Ho, Wo) = the output pixels of out_grid (C_out, N·S) + bias[c] (bias of
    size 0: none)."""
    N, C, Ho, Wo = out.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        b = bias[c] if bias.size else out.dtype.type(0)
        for h in range(Ho):
            src = out_grid[c, n * S + h * Wp : n * S + h * Wp + Wo]
            dst = out[n, c, h]
            for w in range(Wo):
                dst[w] = src[w] + b


def conv2d_forward_shifted(x, weight, bias, geometry, out_hw):
    """x (N, C, H, W), weight (C_out, C, kH, kW), bias (C_out,) or None, stride 1, one group
    -> (N, C_out, Ho, Wo), the bias added."""
    N, C, H, W = x.shape
    c_out = weight.shape[0]
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    Hp, Wp = H + 2 * ph, W + 2 * pw
    S = Hp * Wp
    tail = (kh - 1) * dh * Wp + (kw - 1) * dw
    gemm = blas_gemm(x.dtype)
    taps = np.ascontiguousarray(weight.transpose(2, 3, 0, 1))  # (kH, kW, C_out, C)
    bias = np.zeros(0, x.dtype) if bias is None else np.ascontiguousarray(bias)
    out = np.empty((N, c_out, *out_hw), dtype=x.dtype)
    item = x.itemsize
    # chunks sized by the larger of the input and output grids
    for n0, n1 in chunks(N, max(C, c_out) * S * item, x, GRID_BYTES):
        cols = (n1 - n0) * S
        grid = workspace("shift_in", (C, cols + tail), np.dtype(x.dtype))
        grid[:, cols:] = 0
        to_grid_cpu(x[n0:n1], grid, ph, pw, Hp, Wp)
        out_grid = workspace("shift_out", (c_out, cols), np.dtype(x.dtype))
        for i in range(kh):
            for j in range(kw):
                shift = i * dh * Wp + j * dw
                gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, c_out, cols, C, 1.0,
                     taps[i, j].ctypes.data, C, grid.ctypes.data + item * shift, cols + tail,
                     0.0 if i == j == 0 else 1.0, out_grid.ctypes.data, cols)  # fmt: skip
        from_grid_cpu(out_grid, bias, Wp, S, out[n0:n1])
    return out
