"""im2col and col2im: a convolution's input as columns, and the columns summed back.

The columns of an input ``x (N, C, H, W)`` for a ``kH x kW`` kernel are
``cols (N, C·kH·kW, Ho·Wo)``: row ``(c, i, j)`` holds, for every output position ``(oh, ow)``,
the input pixel that kernel tap ``(i, j)`` of channel ``c`` sees there (0 in the padding).
Worked example: x 1x1x4x4, 3x3 kernel, padding 1, stride 1 -> cols 1x9x4x4; row (0, 0, 0) is x
shifted down-right by one pixel with a zero top row and left column.

``col2im`` is the adjoint of ``im2col``: it sums every column entry back onto the pixel it came
from (a convolution's input gradient, and a transposed convolution's forward).

The tap arithmetic is written once: ``tap_source`` (the input coordinate an output position reads
through a tap), ``tap_pixel`` (the same as a flat position, or -1 in the padding) and their
inverses ``tap_output`` / ``tap_range``. The loops differ per target:

- im2col is a gather on both targets, ``cols[n, c·T + t, p] = x[n, c].flat[tap_pixel(p, t)]``:
  the CPU looks the positions up in a table built once per geometry (one load per entry, parallel
  over (n, c) planes), a CUDA thread computes its own entry's position.
- col2im on the CPU adds each column row into its plane as whole strided rows (``tap_range``),
  one (n, c) plane per ``prange`` iteration, race-free; on the GPU one thread per input pixel
  gathers the entries that read it (``tap_output``): deterministic, no atomics.
"""

import functools
import math

import numba
import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, dual_calling, for_each_element, launch, owned_plane
from .geometry import as_pair, conv_output_size

__all__ = ["Geometry", "im2col", "col2im"]


class Geometry:
    """Kernel, stride, padding, dilation of one convolution, as (h, w) pairs."""

    def __init__(self, kernel, stride, padding, dilation):
        self.kernel = as_pair(kernel)
        self.stride = as_pair(stride)
        self.padding = as_pair(padding)
        self.dilation = as_pair(dilation)

    def args(self):
        """The flat scalar arguments of the im2col / col2im kernels."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
        )
        return kh, kw, sh, sw, ph, pw, dh, dw

    @property
    def pointwise(self):
        """A 1×1 kernel, stride 1, no padding: the input is its own columns."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def output_size(self, h, w):
        per_axis = zip(self.kernel, self.stride, self.padding, self.dilation, strict=True)
        return tuple(conv_output_size(n, *p) for n, p in zip((h, w), per_axis, strict=True))


# ----------------------------------------------------------------------------- per-tap index math


def _tap_source(o, k, stride, pad, dil):
    """Input coordinate read by output position ``o`` through kernel tap ``k``."""
    return o * stride - pad + k * dil


def _tap_output(i, k, stride, pad, dil, out_size):
    """Inverse of ``_tap_source``: the output position whose tap ``k`` reads input ``i``, or -1."""
    t = i + pad - k * dil
    if t < 0 or t % stride != 0:
        return -1
    o = t // stride
    return o if o < out_size else -1


def _tap_range(k, stride, pad, dil, in_size, out_size):
    """The outputs ``[lo, hi)`` whose tap ``k`` lands inside the input (the rest read padding)."""
    t = pad - k * dil
    lo = 0 if t <= 0 else (t + stride - 1) // stride
    t = in_size - 1 + pad - k * dil
    hi = 0 if t < 0 else min(t // stride + 1, out_size)
    return lo, max(lo, hi)


tap_source_cpu, tap_source_cuda = dual(_tap_source)
tap_output_cpu, tap_output_cuda = dual(_tap_output)
# CPU only: the CUDA col2im gathers per input pixel with tap_output instead.
tap_range_cpu = numba.njit(inline="always", cache=True)(_tap_range)
tap_source = tap_source_cpu


def _tap_pixel(oh, ow, i, j, H, W, sh, sw, ph, pw, dh, dw):
    """The flat input position ``h·W + w`` that output ``(oh, ow)`` reads through tap ``(i, j)``,
    or -1 where that is padding."""
    ih = tap_source(oh, i, sh, ph, dh)
    iw = tap_source(ow, j, sw, pw, dw)
    return ih * W + iw if (0 <= ih < H and 0 <= iw < W) else -1


tap_pixel_cpu, tap_pixel_cuda = dual_calling(
    _tap_pixel, tap_source=(tap_source_cpu, tap_source_cuda)
)


# ----------------------------------------------------------------------------- im2col


@numba.njit(cache=True)
def _im2col_sources_cpu(H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    """(kH·kW, Ho·Wo) int32: the ``tap_pixel`` of every tap ``t`` and output position ``p``."""
    src = np.empty((kh * kw, Ho * Wo), np.int32)
    for i in range(kh):
        for j in range(kw):
            for oh in range(Ho):
                for ow in range(Wo):
                    k = tap_pixel_cpu(oh, ow, i, j, H, W, sh, sw, ph, pw, dh, dw)
                    src[i * kw + j, oh * Wo + ow] = k
    return src


@functools.lru_cache(maxsize=64)
def _im2col_sources(H, W, Ho, Wo, args):
    """The im2col gather table of one geometry, built once (a net has a handful of them)."""
    return _im2col_sources_cpu(H, W, Ho, Wo, *args)


@cpu_kernel
def im2col_cpu(x, cols, src):
    """x (N, C, H, W) C-contiguous -> cols (N, C·T, L), T = kH·kW taps, L = Ho·Wo positions.

    A gather through the table ``src (T, L)`` of ``_im2col_sources``: every entry is one load
    from the (cached) input plane, with no per-tap slicing, which dominated on the small maps of
    a U-Net's lower levels (measured 2-3x faster there, and faster on large maps too).
    """
    N, C, H, W = x.shape
    T, L = src.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c].reshape(H * W)
        for t in range(T):
            row = cols[n, c * T + t]
            s = src[t]
            for p in range(L):
                k = s[p]
                row[p] = plane[k] if k >= 0 else 0


@cuda.jit
def im2col_cuda(x, cols, H, W, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    """x (N, C, H·W) -> cols (N, C·T, L): one thread per entry (n, c·T + t, p)."""
    N = x.shape[0]
    CT, L = cols.shape[1], cols.shape[2]
    T = kh * kw
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * CT * L, step):
        p = e % L
        row = (e // L) % CT
        n = e // (L * CT)
        t = row % T
        k = tap_pixel_cuda(p // Wo, p % Wo, t // kw, t % kw, H, W, sh, sw, ph, pw, dh, dw)
        cols[n, row, p] = x[n, row // T, k] if k >= 0 else x.dtype.type(0)


def im2col(x, geometry, out_hw, out=None):
    """Columns ``(N, C·kH·kW, Ho, Wo)`` of ``x (N, C, H, W)`` (host or device, same as ``x``).

    The conv wrappers skip it for a pointwise geometry (``_columns``), whose columns are ``x``."""
    N, C, H, W = x.shape
    kh, kw = geometry.kernel
    shape = (N, C * kh * kw, *out_hw)
    L = out_hw[0] * out_hw[1]
    if gpu.is_device_array(x):
        cols = gpu.empty(shape, x.dtype) if out is None else out
        im2col_cuda[launch(math.prod(shape))](
            x.reshape(N, C, H * W), cols.reshape(N, C * kh * kw, L), H, W, out_hw[1],
            *geometry.args(),
        )  # fmt: skip
    else:
        cols = np.empty(shape, dtype=x.dtype) if out is None else out
        src = _im2col_sources(H, W, *out_hw, geometry.args())
        im2col_cpu(np.ascontiguousarray(x), cols.reshape(N, C * kh * kw, L), src)
    return cols


def im2col_side_by_side(x, geometry, out_hw, out):
    """Host only: the columns of ``x (N, C, H, W)`` as ``out (C·kH·kW, N, Ho·Wo)``, the samples
    side by side, so one matrix product covers the whole batch (the same gather as ``im2col``,
    written through a transposed view)."""
    N, C, H, W = x.shape
    src = _im2col_sources(H, W, *out_hw, geometry.args())
    im2col_cpu(np.ascontiguousarray(x), out.transpose(1, 0, 2), src)
    return out


# ----------------------------------------------------------------------------- col2im


@cpu_kernel
def col2im_cpu(cols, x, kh, kw, sh, sw, ph, pw, dh, dw):
    """cols (N, C·kH·kW, Ho, Wo) -> x (N, C, H, W), summing every entry onto its source pixel.

    Race-free: prange iteration ``(n, c)`` owns plane ``x[n, c]`` and only it adds into it.
    The adds run over 1-D views indexed from 0, so LLVM sees no negative index to wrap.
    """
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[2], cols.shape[3]
    for nc in prange(N * C):
        n, c, plane = owned_plane(x, nc)
        for i in range(kh):
            oh_lo, oh_hi = tap_range_cpu(i, sh, ph, dh, H, Ho)
            ih0 = tap_source_cpu(oh_lo, i, sh, ph, dh)
            for j in range(kw):
                ow_lo, ow_hi = tap_range_cpu(j, sw, pw, dw, W, Wo)
                iw0 = tap_source_cpu(ow_lo, j, sw, pw, dw)
                m = ow_hi - ow_lo
                if oh_hi <= oh_lo or m <= 0:
                    continue
                src = cols[n, (c * kh + i) * kw + j, oh_lo:oh_hi, ow_lo:ow_hi]
                rows = plane[ih0 : ih0 + (oh_hi - oh_lo - 1) * sh + 1 : sh]
                for r in range(oh_hi - oh_lo):
                    s = src[r]
                    if sw == 1:
                        d = rows[r, iw0 : iw0 + m]
                        for t in range(m):
                            d[t] += s[t]
                    else:
                        d = rows[r, iw0 : iw0 + (m - 1) * sw + 1 : sw]
                        for t in range(m):
                            d[t] += s[t]


def _col2im(cols, x, n, c, ih, iw, params):
    """Input pixel (ih, iw): the sum of the column entries that read it (a gather, no atomics)."""
    kh, kw, sh, sw, ph, pw, dh, dw = params
    Ho, Wo = cols.shape[2], cols.shape[3]
    acc = x.dtype.type(0)  # at most kh·kw terms: the input's dtype is accurate enough
    for i in range(kh):
        oh = tap_output_cuda(ih, i, sh, ph, dh, Ho)
        if oh < 0:
            continue
        for j in range(kw):
            ow = tap_output_cuda(iw, j, sw, pw, dw, Wo)
            if ow >= 0:
                acc += cols[n, (c * kh + i) * kw + j, oh, ow]
    x[n, c, ih, iw] = acc


col2im_cuda = for_each_element(_col2im)


def col2im(cols, geometry, channels, in_hw, out=None):
    """Sum columns ``(N, C·kH·kW, Ho, Wo)`` back onto ``(N, C, H, W)`` (the adjoint of im2col)."""
    shape = (cols.shape[0], channels, *in_hw)
    if gpu.is_device_array(cols):
        x = gpu.empty(shape, cols.dtype) if out is None else out
        col2im_cuda[launch(math.prod(shape))](cols, x, geometry.args())
    else:
        x = np.empty(shape, dtype=cols.dtype) if out is None else out
        col2im_cpu(cols, x, *geometry.args())
    return x
