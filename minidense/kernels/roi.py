"""RoI feature extraction kernels: RoIPool, RoIWarp and RoIAlign, forward and backward.

All three cut a fixed-size ``(PH, PW)`` grid of features out of ``x (N, C, H, W)`` for each RoI
``rois[k] = (batch_index, x1, y1, x2, y2)`` (input-image pixels; ``spatial_scale`` maps them onto
the feature map, e.g. 1/16 for a stride-16 backbone), giving ``(K, C, PH, PW)``. Semantics follow
torchvision exactly (see DESIGN.md, "Exact semantics"):

* **roi_pool** (Fast R-CNN) rounds the box to whole cells, splits it into PH x PW bins with
  floor/ceil bounds and takes the max of each bin (argmax kept for the backward).
* **roi_align** (Mask R-CNN) keeps the box continuous and averages ``grid_h x grid_w`` bilinear
  samples per bin, e.g. a 2 x 2 sampling grid::

      +-------+-------+        one bin of a 2 x 2 output; each x is a bilinear sample at
      | x   x | x   x |        y = start_y + ph*bin_h + (iy + 0.5)*bin_h/grid_h
      | x   x | x   x |        and the bin's value is the mean of its samples
      +-------+-------+
* **roi_warp** (the middle row of the Mask R-CNN ablation) first rounds the box to the feature grid,
  ``round(x1 * scale)``, then samples exactly as roi_align does.

Performance design (DESIGN.md, "Performance notes"): the sample positions and weights of a RoI do
not depend on the channel, so the CPU kernels compute them once per (RoI, bin, sample) and run an
inner contiguous loop over channels of a channels-last ``(N, H, W, C)`` copy of the features. The
CPU backward passes are partitioned by (image, channel block): each ``prange`` iteration owns
``grad_x[n, c0:c1]`` and walks over every RoI of image ``n`` in a fixed order, so they are parallel,
race-free and bit-for-bit deterministic. The CUDA kernels run one thread per output element, and
their backward passes use ``cuda.atomic.add``, so the order of the float additions (and the last
bits of the result) may change from run to run.

All arithmetic is done in the features' dtype, as torchvision does: the boxes are converted to it
and ``spatial_scale`` too, and every constant and every integer that meets a coordinate is cast
to it first (``T(0.5)``, ``T(ph)`` with ``T = rois.dtype.type``). Compiled code would otherwise
promote ``float32 * 0.5`` or ``float32 * int`` to float64 (slow on most GPUs), while the CUDA
simulator, which runs the kernels as Python on NumPy scalars, keeps float32 (NumPy 2): the two
would disagree on a sample that sits on a cell edge. Written this way, the CPU kernels, the CUDA
kernels and the simulator compute the same geometry, bit for bit.
"""

import math

import numba
import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, dual_calling, is_device_array, launch, unravel_nchw_cuda

__all__ = [
    "roi_align_forward",
    "roi_align_backward",
    "roi_warp_forward",
    "roi_warp_backward",
    "roi_pool_forward",
    "roi_pool_backward",
    "c_round",
    "roi_align_geometry",
    "sample_coord",
    "bilinear_weights",
    "roi_pool_geometry",
    "roi_pool_bin_bounds",
]


# ---------------------------------------------------------------------------------------------
# Per-element math, written once and compiled for both targets
# ---------------------------------------------------------------------------------------------


def _c_round(v):
    """C's ``round``: halves away from zero (2.5 -> 3, -2.5 -> -3; ``np.round`` gives 2 and -2).

    Written with ``a - floor(a)``, which is exact, rather than ``floor(a + 0.5)``, which rounds
    0.49999999999999994 up. The result has ``v``'s type.
    """
    T = type(v)
    a = abs(v)
    f = T(math.floor(a))
    if a - f >= T(0.5):
        f += T(1)
    return f if v >= T(0) else -f


c_round_cpu, c_round_cuda = dual(_c_round)
c_round = c_round_cpu


def _roi_align_geometry(
    rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned, quantize
):
    """Sampling geometry of RoI ``k`` for roi_align (``quantize=False``) or roi_warp (``True``).

    Returns ``(start_y, start_x, bin_h, bin_w, grid_h, grid_w, inv_count)`` in feature-map cells.
    ``aligned`` shifts the box by half a cell so that sample points sit on pixel centres; without
    it a RoI is at least 1 x 1 cell. With ``aligned`` a tiny or even negative size is used as is,
    and an adaptive grid (``sampling_ratio <= 0``: ``ceil(size / pooled)``) may then be empty:
    the bin is 0. ``inv_count = 1 / max(grid_h * grid_w, 1)``.

    Computed in the boxes' dtype ``T``; ``spatial_scale`` must be a ``T`` too (module docstring).
    """
    T = rois.dtype.type
    offset = T(0.5) if aligned else T(0)
    x1 = rois[k, 1] * spatial_scale
    y1 = rois[k, 2] * spatial_scale
    x2 = rois[k, 3] * spatial_scale
    y2 = rois[k, 4] * spatial_scale
    if quantize:
        # RoIWarp: snap the box to the feature grid (the quantisation RoIAlign removes).
        x1 = c_round(x1)
        y1 = c_round(y1)
        x2 = c_round(x2)
        y2 = c_round(y2)
    start_x = x1 - offset
    start_y = y1 - offset
    roi_w = (x2 - offset) - start_x
    roi_h = (y2 - offset) - start_y
    if not aligned:
        roi_w = max(roi_w, T(1))
        roi_h = max(roi_h, T(1))
    bin_h = roi_h / T(pooled_h)
    bin_w = roi_w / T(pooled_w)
    if sampling_ratio > 0:
        grid_h = sampling_ratio
        grid_w = sampling_ratio
    else:
        grid_h = max(int(math.ceil(bin_h)), 0)
        grid_w = max(int(math.ceil(bin_w)), 0)
    inv_count = T(1) / T(max(grid_h * grid_w, 1))
    return start_y, start_x, bin_h, bin_w, grid_h, grid_w, inv_count


roi_align_geometry_cpu, roi_align_geometry_cuda = dual_calling(
    _roi_align_geometry, c_round=(c_round_cpu, c_round_cuda)
)
roi_align_geometry = roi_align_geometry_cpu


def _sample_coord(start, p, bin_size, i, grid):
    """Coordinate of sample ``i`` (of ``grid``) in bin ``p``: e.g. 0.25 and 0.75 of a bin for 2.
    In ``start``'s type (the integers are cast to it)."""
    T = type(start)
    return start + T(p) * bin_size + (T(i) + T(0.5)) * bin_size / T(grid)


sample_coord_cpu, sample_coord_cuda = dual(_sample_coord)
sample_coord = sample_coord_cpu


def _bilinear_weights(y, x, H, W):
    """Four neighbours and weights of the bilinear sample at ``(y, x)`` on an ``H x W`` map.

    Returns ``(y_low, x_low, y_high, x_high, w1, w2, w3, w4)`` with ``value = w1*f[y_low, x_low]
    + w2*f[y_low, x_high] + w3*f[y_high, x_low] + w4*f[y_high, x_high]``.
    A sample more than one cell outside the map (y < -1, y > H, ...) is 0: then ``y_low = -1`` and
    all weights are 0 (the sample still counts in the bin's mean). Inside, coordinates below 0 are
    clamped to 0 and the last row/column is repeated past H - 1 / W - 1. The test is written as
    ``not (inside)`` so that a NaN coordinate also lands in the "outside" branch. The weights have
    the coordinates' type.
    """
    T = type(y)
    if not (y >= T(-1) and y <= T(H) and x >= T(-1) and x <= T(W)):
        return -1, -1, -1, -1, T(0), T(0), T(0), T(0)
    if y <= T(0):
        y = T(0)
    if x <= T(0):
        x = T(0)
    y_low = int(y)
    x_low = int(x)
    if y_low >= H - 1:
        y_low = H - 1
        y_high = H - 1
        y = T(y_low)
    else:
        y_high = y_low + 1
    if x_low >= W - 1:
        x_low = W - 1
        x_high = W - 1
        x = T(x_low)
    else:
        x_high = x_low + 1
    ly = y - T(y_low)
    lx = x - T(x_low)
    hy = T(1) - ly
    hx = T(1) - lx
    return y_low, x_low, y_high, x_high, hy * hx, hy * lx, ly * hx, ly * lx


bilinear_weights_cpu, bilinear_weights_cuda = dual(_bilinear_weights)
bilinear_weights = bilinear_weights_cpu


def _roi_pool_geometry(rois, k, spatial_scale, pooled_h, pooled_w):
    """RoIPool's quantised box: ``(start_y, start_x, bin_h, bin_w)``.

    ``start = round(x1 * scale)`` and ``end = round(x2 * scale)`` with C rounding; the end is
    inclusive, so the size is ``max(end - start + 1, 1)`` cells. In the boxes' dtype ``T``, as
    roi_align; ``spatial_scale`` must be a ``T``.
    """
    T = rois.dtype.type
    start_x = int(c_round(rois[k, 1] * spatial_scale))
    start_y = int(c_round(rois[k, 2] * spatial_scale))
    end_x = int(c_round(rois[k, 3] * spatial_scale))
    end_y = int(c_round(rois[k, 4] * spatial_scale))
    roi_w = max(end_x - start_x + 1, 1)
    roi_h = max(end_y - start_y + 1, 1)
    return start_y, start_x, T(roi_h) / T(pooled_h), T(roi_w) / T(pooled_w)


roi_pool_geometry_cpu, roi_pool_geometry_cuda = dual_calling(
    _roi_pool_geometry, c_round=(c_round_cpu, c_round_cuda)
)
roi_pool_geometry = roi_pool_geometry_cpu


def _roi_pool_bin_bounds(ph, pw, start_y, start_x, bin_h, bin_w, H, W):
    """Half-open bounds ``(h0, h1, w0, w1)`` of bin ``(ph, pw)``, clipped to the map.

    Bin ``ph`` spans rows ``[floor(ph*bin_h), ceil((ph+1)*bin_h))`` of the RoI, so neighbouring
    bins may overlap by a row; e.g. 5 rows into 2 bins: rows 0-2 and 2-4. ``h1 <= h0`` is empty.
    """
    T = type(bin_h)
    h0 = min(max(int(math.floor(T(ph) * bin_h)) + start_y, 0), H)
    h1 = min(max(int(math.ceil(T(ph + 1) * bin_h)) + start_y, 0), H)
    w0 = min(max(int(math.floor(T(pw) * bin_w)) + start_x, 0), W)
    w1 = min(max(int(math.ceil(T(pw + 1) * bin_w)) + start_x, 0), W)
    return h0, h1, w0, w1


roi_pool_bin_bounds_cpu, roi_pool_bin_bounds_cuda = dual(_roi_pool_bin_bounds)
roi_pool_bin_bounds = roi_pool_bin_bounds_cpu


# ---------------------------------------------------------------------------------------------
# CPU kernels. They take flat views, ``(N, H*W, C)`` features and ``(K, C, PH*PW)`` outputs, so
# that no integer division sits in an inner loop.
# ---------------------------------------------------------------------------------------------


@cpu_kernel
def roi_align_forward_cpu(xcl, H, rois, out, PH, spatial_scale, sampling_ratio, aligned, quantize):
    """``xcl (N, H*W, C)`` channels-last features, ``rois (K, 5)`` -> ``out (K, C, PH*PW)``.

    One ``prange`` iteration per RoI; the bilinear weights of each sample are computed once and
    applied to all C channels in a contiguous (vectorised) inner loop.
    """
    N, HW, C = xcl.shape
    W = HW // H
    K, _, P = out.shape
    PW = P // PH
    for k in prange(K):
        n = int(rois[k, 0])
        sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cpu(
            rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        acc = np.zeros((P, C), dtype=xcl.dtype)
        wv = np.empty(4, dtype=xcl.dtype)  # the weights cast once to the features' dtype
        for ph in range(PH):
            for iy in range(gh):
                y = sample_coord_cpu(sy, ph, bh, iy, gh)
                for pw in range(PW):
                    a = acc[ph * PW + pw]
                    for ix in range(gw):
                        x = sample_coord_cpu(sx, pw, bw, ix, gw)
                        yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cpu(y, x, H, W)
                        if yl < 0:
                            continue  # outside the map: adds 0 (but counts in the mean)
                        wv[0] = w1
                        wv[1] = w2
                        wv[2] = w3
                        wv[3] = w4
                        v1 = xcl[n, yl * W + xl]
                        v2 = xcl[n, yl * W + xh]
                        v3 = xcl[n, yh * W + xl]
                        v4 = xcl[n, yh * W + xh]
                        for c in range(C):
                            a[c] += wv[0] * v1[c] + wv[1] * v2[c] + wv[2] * v3[c] + wv[3] * v4[c]
        # (bin, C) -> (C, bin), scaled by 1/count; the block is small and stays in cache.
        for c in range(C):
            for b in range(P):
                out[k, c, b] = acc[b, c] * inv_count


@cpu_kernel
def roi_align_backward_cpu(
    grad_out, PH, rois, order, first, grad_x, W, cblock, spatial_scale, sampling_ratio, aligned,
    quantize,
):  # fmt: skip
    """Scatter ``grad_out (K, C, PH*PW)`` onto ``grad_x (N, C, H*W)`` (fully overwritten).

    ``order`` lists the RoIs sorted by image; image n's are ``order[first[n]:first[n+1]]``.
    Iteration ``t`` owns ``grad_x[n, c0:c0+cblock]`` and accumulates into a private channels-last
    ``(H*W, cblock)`` buffer: no two iterations write the same memory and the order of the sums
    is fixed, so the result is bit-for-bit the same on every run.
    """
    N, C, HW = grad_x.shape
    H = HW // W
    K, _, P = grad_out.shape
    PW = P // PH
    nblocks = (C + cblock - 1) // cblock
    for t in prange(N * nblocks):
        n = t // nblocks
        c0 = (t % nblocks) * cblock
        cw = min(C, c0 + cblock) - c0
        acc = np.zeros((HW, cw), dtype=grad_x.dtype)
        g = np.empty((P, cw), dtype=grad_x.dtype)
        wv = np.empty(4, dtype=grad_x.dtype)
        for j in range(first[n], first[n + 1]):
            k = order[j]
            sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cpu(
                rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
            )
            for c in range(cw):
                for b in range(P):
                    g[b, c] = grad_out[k, c0 + c, b] * inv_count
            for ph in range(PH):
                for iy in range(gh):
                    y = sample_coord_cpu(sy, ph, bh, iy, gh)
                    for pw in range(PW):
                        gb = g[ph * PW + pw]
                        for ix in range(gw):
                            x = sample_coord_cpu(sx, pw, bw, ix, gw)
                            yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cpu(y, x, H, W)
                            if yl < 0:
                                continue
                            wv[0] = w1
                            wv[1] = w2
                            wv[2] = w3
                            wv[3] = w4
                            # At the border the four rows may coincide (clamped neighbours):
                            # one loop per neighbour keeps every += correct then too.
                            a = acc[yl * W + xl]
                            for c in range(cw):
                                a[c] += wv[0] * gb[c]
                            a = acc[yl * W + xh]
                            for c in range(cw):
                                a[c] += wv[1] * gb[c]
                            a = acc[yh * W + xl]
                            for c in range(cw):
                                a[c] += wv[2] * gb[c]
                            a = acc[yh * W + xh]
                            for c in range(cw):
                                a[c] += wv[3] * gb[c]
        for c in range(cw):
            for p in range(HW):
                grad_x[n, c0 + c, p] = acc[p, c]


@cpu_kernel
def roi_pool_forward_cpu(xcl, H, rois, out, argmax, PH, spatial_scale):
    """``xcl (N, H*W, C)`` -> ``out, argmax (K, C, PH*PW)``; argmax is ``h*W + w`` or -1.

    Each bin starts from its first cell and takes a strictly greater value only, so the first
    maximum in row-major order wins a tie; an empty bin gives 0 and -1.
    """
    N, HW, C = xcl.shape
    W = HW // H
    K, _, P = out.shape
    PW = P // PH
    for k in prange(K):
        n = int(rois[k, 0])
        sy, sx, bh, bw = roi_pool_geometry_cpu(rois, k, spatial_scale, PH, PW)
        best = np.empty((P, C), dtype=xcl.dtype)
        where = np.empty((P, C), dtype=np.int32)
        for ph in range(PH):
            for pw in range(PW):
                m = best[ph * PW + pw]
                a = where[ph * PW + pw]
                h0, h1, w0, w1 = roi_pool_bin_bounds_cpu(ph, pw, sy, sx, bh, bw, H, W)
                if h1 <= h0 or w1 <= w0:
                    m[:] = 0
                    a[:] = -1
                    continue
                m[:] = xcl[n, h0 * W + w0]
                a[:] = h0 * W + w0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = xcl[n, h * W + w]
                        idx = h * W + w
                        # Select form (no branch) so that the loop over channels vectorises.
                        for c in range(C):
                            gt = v[c] > m[c]
                            m[c] = v[c] if gt else m[c]
                            a[c] = idx if gt else a[c]
        for c in range(C):
            for b in range(P):
                out[k, c, b] = best[b, c]
                argmax[k, c, b] = where[b, c]


@cpu_kernel
def roi_pool_backward_cpu(grad_out, argmax, rois, order, first, grad_x, cblock):
    """Route ``grad_out (K, C, PH*PW)`` to the stored argmax in ``grad_x (N, C, H*W)``.

    Same (image, channel block) partition as roi_align's backward: race-free and deterministic.
    """
    N, C, HW = grad_x.shape
    K, _, P = grad_out.shape
    nblocks = (C + cblock - 1) // cblock
    for t in prange(N * nblocks):
        n = t // nblocks
        c0 = (t % nblocks) * cblock
        c1 = min(C, c0 + cblock)
        for c in range(c0, c1):
            grad_x[n, c, :] = 0
        for j in range(first[n], first[n + 1]):
            k = order[j]
            for c in range(c0, c1):
                gx = grad_x[n, c]
                for b in range(P):
                    idx = argmax[k, c, b]
                    if idx >= 0:
                        gx[idx] += grad_out[k, c, b]


# ---------------------------------------------------------------------------------------------
# CUDA kernels (one thread per output element, grid-stride loop)
# ---------------------------------------------------------------------------------------------


@cuda.jit
def roi_align_forward_cuda(x, rois, out, spatial_scale, sampling_ratio, aligned, quantize):
    """``x (N, C, H, W)``, ``rois (K, 5)`` -> ``out (K, C, PH, PW)``."""
    N, C, H, W = x.shape
    K, _, PH, PW = out.shape
    total = K * C * PH * PW
    i = cuda.grid(1)
    step = cuda.gridsize(1)
    while i < total:
        k, c, ph, pw = unravel_nchw_cuda(i, C, PH, PW)
        n = int(rois[k, 0])
        sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cuda(
            rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        if n < 0 or n >= N:
            gh = 0  # a bad batch index (not validated on the device) reads nothing: output 0
        acc = x.dtype.type(0)
        for iy in range(gh):
            y = sample_coord_cuda(sy, ph, bh, iy, gh)
            for ix in range(gw):
                xx = sample_coord_cuda(sx, pw, bw, ix, gw)
                yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cuda(y, xx, H, W)
                if yl >= 0:
                    acc += (
                        w1 * x[n, c, yl, xl]
                        + w2 * x[n, c, yl, xh]
                        + w3 * x[n, c, yh, xl]
                        + w4 * x[n, c, yh, xh]
                    )
        out[k, c, ph, pw] = acc * inv_count
        i += step


@cuda.jit
def roi_align_backward_cuda(
    grad_out, rois, grad_x, spatial_scale, sampling_ratio, aligned, quantize
):
    """Scatter ``grad_out (K, C, PH, PW)`` into zeroed ``grad_x (N, C, H, W)``.

    Uses ``cuda.atomic.add``: overlapping RoIs add in an unspecified order, so the result is
    non-deterministic in its last bits.
    """
    N, C, H, W = grad_x.shape
    K, _, PH, PW = grad_out.shape
    total = K * C * PH * PW
    i = cuda.grid(1)
    step = cuda.gridsize(1)
    while i < total:
        k, c, ph, pw = unravel_nchw_cuda(i, C, PH, PW)
        n = int(rois[k, 0])
        sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cuda(
            rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        g = grad_out[k, c, ph, pw] * inv_count
        if n < 0 or n >= N:
            gh = 0
        for iy in range(gh):
            y = sample_coord_cuda(sy, ph, bh, iy, gh)
            for ix in range(gw):
                xx = sample_coord_cuda(sx, pw, bw, ix, gw)
                yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cuda(y, xx, H, W)
                if yl >= 0:
                    cuda.atomic.add(grad_x, (n, c, yl, xl), w1 * g)
                    cuda.atomic.add(grad_x, (n, c, yl, xh), w2 * g)
                    cuda.atomic.add(grad_x, (n, c, yh, xl), w3 * g)
                    cuda.atomic.add(grad_x, (n, c, yh, xh), w4 * g)
        i += step


@cuda.jit
def roi_pool_forward_cuda(x, rois, out, argmax, spatial_scale):
    """``x (N, C, H, W)`` -> ``out, argmax (K, C, PH, PW)`` (see roi_pool_forward_cpu)."""
    N, C, H, W = x.shape
    K, _, PH, PW = out.shape
    total = K * C * PH * PW
    i = cuda.grid(1)
    step = cuda.gridsize(1)
    while i < total:
        k, c, ph, pw = unravel_nchw_cuda(i, C, PH, PW)
        n = int(rois[k, 0])
        sy, sx, bh, bw = roi_pool_geometry_cuda(rois, k, spatial_scale, PH, PW)
        h0, h1, w0, w1 = roi_pool_bin_bounds_cuda(ph, pw, sy, sx, bh, bw, H, W)
        if h1 <= h0 or w1 <= w0 or n < 0 or n >= N:
            out[k, c, ph, pw] = 0
            argmax[k, c, ph, pw] = -1
        else:
            m = x[n, c, h0, w0]
            a = h0 * W + w0
            for h in range(h0, h1):
                for w in range(w0, w1):
                    if x[n, c, h, w] > m:
                        m = x[n, c, h, w]
                        a = h * W + w
            out[k, c, ph, pw] = m
            argmax[k, c, ph, pw] = a
        i += step


@cuda.jit
def roi_pool_backward_cuda(grad_out, argmax, rois, grad_x):
    """Add ``grad_out`` at the argmax into zeroed ``grad_x (N, C, H*W)``.

    Uses ``cuda.atomic.add`` (bins of overlapping RoIs share argmaxes): non-deterministic order.
    """
    N, C, HW = grad_x.shape
    K, _, PH, PW = grad_out.shape
    total = K * C * PH * PW
    i = cuda.grid(1)
    step = cuda.gridsize(1)
    while i < total:
        k, c, ph, pw = unravel_nchw_cuda(i, C, PH, PW)
        idx = int(argmax[k, c, ph, pw])
        if idx >= 0:
            cuda.atomic.add(grad_x, (int(rois[k, 0]), c, idx), grad_out[k, c, ph, pw])
        i += step


# ---------------------------------------------------------------------------------------------
# Host wrappers: validate, normalise, allocate, launch
# ---------------------------------------------------------------------------------------------


def _pair(output_size):
    if isinstance(output_size, (int, np.integer)):
        ph = pw = int(output_size)
    else:
        ph, pw = (int(s) for s in output_size)
    if ph <= 0 or pw <= 0:
        raise ValueError(f"output_size must be positive, got {output_size!r}")
    return ph, pw


def _check(x, rois):
    """Shared checks; returns ``(on_device, rois)``, the rois in the features' dtype (contiguous
    on the CPU; on the device they must already be: the ops convert them)."""
    on_device = is_device_array(x)
    if x.ndim != 4:
        raise ValueError(f"features must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    if np.dtype(x.dtype) not in (np.float32, np.float64):
        raise TypeError(f"features must be float32 or float64, got {x.dtype}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"features' spatial size (H, W) must be > 0, got shape {tuple(x.shape)}")
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must have shape (K, 5), got shape {tuple(rois.shape)}")
    if on_device != is_device_array(rois):
        raise TypeError("features and rois must be on the same device")
    if on_device:
        _check_device_rois(rois, x.dtype)
    else:
        rois = np.ascontiguousarray(rois, dtype=x.dtype)
        batch = rois[:, 0]
        if len(rois) and not ((batch >= 0) & (batch < x.shape[0])).all():
            raise ValueError(f"rois batch indices must lie in [0, {x.shape[0]})")
    return on_device, rois


def _check_device_rois(rois, dtype):
    if np.dtype(rois.dtype) != np.dtype(dtype):
        raise TypeError(f"device rois must have the features' dtype {dtype}, got {rois.dtype}")


def _by_image(rois, N):
    """RoI indices sorted (stably) by image; image n's RoIs are ``order[first[n]:first[n+1]]``."""
    batch = rois[:, 0].astype(np.int64)
    order = np.argsort(batch, kind="stable").astype(np.int64)
    first = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(batch, minlength=N)[:N], out=first[1:])
    return order, first


def _channel_block(N, C):
    """Channels per backward task: enough tasks (about 4 per thread) to balance the load."""
    tasks_per_image = max(1, -(-4 * numba.get_num_threads() // max(N, 1)))
    return max(1, -(-C // min(C, tasks_per_image))) if C else 1


def channels_last(x):
    """``(N, C, H, W)`` -> contiguous ``(N, H, W, C)`` (no copy if the memory is already so)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, quantize):
    on_device, rois = _check(x, rois)
    PH, PW = _pair(output_size)
    N, C, H, W = x.shape
    K = rois.shape[0]
    scale, sr = x.dtype.type(spatial_scale), int(sampling_ratio)
    if on_device:
        out = gpu.empty((K, C, PH, PW), x.dtype)
        if out.size:
            roi_align_forward_cuda[launch(out.size)](
                x, rois, out, scale, sr, bool(aligned), quantize
            )
        return out
    out = np.empty((K, C, PH, PW), dtype=x.dtype)
    if out.size:
        xcl = channels_last(x).reshape(N, H * W, C)
        flat = out.reshape(K, C, PH * PW)
        roi_align_forward_cpu(xcl, H, rois, flat, PH, scale, sr, bool(aligned), quantize)
    return out


def _roi_align_backward(
    grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, quantize
):
    N, C, H, W = (int(s) for s in input_shape)
    scale, sr = grad_out.dtype.type(spatial_scale), int(sampling_ratio)
    if is_device_array(grad_out):
        grad_x = gpu.zeros((N, C, H, W), grad_out.dtype)
        if grad_out.size:
            _check_device_rois(rois, grad_out.dtype)
            roi_align_backward_cuda[launch(grad_out.size)](
                grad_out, rois, grad_x, scale, sr, bool(aligned), quantize
            )
        return grad_x
    rois = np.ascontiguousarray(rois, dtype=grad_out.dtype)
    grad_out = np.ascontiguousarray(grad_out)
    if grad_out.size == 0:
        return np.zeros((N, C, H, W), dtype=grad_out.dtype)
    K, _, PH, PW = grad_out.shape
    grad_x = np.empty((N, C, H * W), dtype=grad_out.dtype)
    order, first = _by_image(rois, N)
    roi_align_backward_cpu(
        grad_out.reshape(K, C, PH * PW), PH, rois, order, first, grad_x, W,
        _channel_block(N, C), scale, sr, bool(aligned), quantize,
    )  # fmt: skip
    return grad_x.reshape(N, C, H, W)


def roi_align_forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign: ``x (N, C, H, W)``, ``rois (K, 5)`` -> ``(K, C, PH, PW)``, same dtype as ``x``.

    ``sampling_ratio <= 0`` samples ``ceil(roi_size / output_size)`` points per bin and axis.
    Works on NumPy arrays (parallel CPU kernel) or Numba device arrays (CUDA kernel).
    """
    return _roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, False)


def roi_align_backward(
    grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """Gradient of roi_align w.r.t. the features: ``grad_out (K, C, PH, PW)`` -> ``(N, C, H, W)``.

    CPU: parallel and deterministic. CUDA: atomics, non-deterministic summation order.
    """
    return _roi_align_backward(
        grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, False
    )


def roi_warp_forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIWarp: the box snapped to the feature grid (``round(x*scale)``), sampled as RoIAlign."""
    return _roi_align_forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, True)


def roi_warp_backward(
    grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """Gradient of roi_warp w.r.t. the features (see roi_align_backward)."""
    return _roi_align_backward(
        grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, True
    )


def roi_pool_forward(x, rois, output_size, spatial_scale=1.0):
    """RoIPool: ``x (N, C, H, W)``, ``rois (K, 5)`` -> ``(out, argmax)``, both ``(K, C, PH, PW)``.

    ``argmax`` (int32) is the flat index ``h*W + w`` of each bin's maximum in its (n, c) plane,
    -1 for an empty bin (whose output is 0).
    """
    on_device, rois = _check(x, rois)
    PH, PW = _pair(output_size)
    N, C, H, W = x.shape
    K = rois.shape[0]
    scale = x.dtype.type(spatial_scale)
    if on_device:
        out = gpu.empty((K, C, PH, PW), x.dtype)
        argmax = gpu.empty((K, C, PH, PW), np.int32)
        if out.size:
            roi_pool_forward_cuda[launch(out.size)](x, rois, out, argmax, scale)
        return out, argmax
    out = np.empty((K, C, PH, PW), dtype=x.dtype)
    argmax = np.empty((K, C, PH, PW), dtype=np.int32)
    if out.size:
        xcl = channels_last(x).reshape(N, H * W, C)
        roi_pool_forward_cpu(
            xcl, H, rois, out.reshape(K, C, PH * PW), argmax.reshape(K, C, PH * PW), PH, scale
        )
    return out, argmax


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Gradient of roi_pool: each output's gradient goes to its argmax -> ``(N, C, H, W)``.

    CPU: parallel and deterministic. CUDA: atomics, non-deterministic summation order.
    """
    N, C, H, W = (int(s) for s in input_shape)
    if is_device_array(grad_out):
        grad_x = gpu.zeros((N, C, H, W), grad_out.dtype)
        if grad_out.size:
            _check_device_rois(rois, grad_out.dtype)
            roi_pool_backward_cuda[launch(grad_out.size)](
                grad_out, argmax, rois, grad_x.reshape(N, C, H * W)
            )
        return grad_x
    if grad_out.size == 0:
        return np.zeros((N, C, H, W), dtype=grad_out.dtype)
    rois = np.ascontiguousarray(rois, dtype=np.float64)
    grad_x = np.empty((N, C, H * W), dtype=grad_out.dtype)
    order, first = _by_image(rois, N)
    K, _, PH, PW = grad_out.shape
    roi_pool_backward_cpu(
        np.ascontiguousarray(grad_out).reshape(K, C, PH * PW),
        np.ascontiguousarray(argmax, dtype=np.int32).reshape(K, C, PH * PW),
        rois,
        order,
        first,
        grad_x,
        _channel_block(N, C),
    )
    return grad_x.reshape(N, C, H, W)
