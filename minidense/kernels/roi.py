"""RoI feature extraction: what the RoIPool, RoIWarp and RoIAlign kernels share.

All three cut a fixed-size ``(PH, PW)`` grid of features out of ``x (N, C, H, W)`` for each RoI
``rois[k] = (batch_index, x1, y1, x2, y2)`` (input-image pixels; ``spatial_scale`` maps them onto
the feature map, e.g. 1/16 for a stride-16 backbone), giving ``(K, C, PH, PW)``. Semantics follow
torchvision exactly (docs/ops.md):

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

The kernels (``roi_align.py``, ``roi_pool.py``): the sample positions and weights of a RoI do
not depend on the channel, so the CPU kernels compute them once per (RoI, bin, sample) and run an
inner contiguous loop over channels of a channels-last ``(N, H, W, C)`` copy of the features. The
CPU backward passes are partitioned by (image, channel block): each ``prange`` iteration owns
``grad_x[n, c0:c1]`` and walks over every RoI of image ``n`` in a fixed order, so they are parallel,
race-free and bit-for-bit deterministic. The CUDA kernels run one thread per output element, and
their backward passes use ``cuda.atomic.add``, so the order of the float additions (and the last
bits of the result) may change from run to run. Those loops are all that differ between the
targets: the geometry and the per-element math below (the bilinear weights, their corner sum and
scatter, a bin's running maximum) are written once and compiled for both.

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
from numba import cuda

from ._targets import dual, dual_calling

__all__ = [
    "c_round", "roi_align_geometry", "sample_coord", "bilinear_weights", "roi_pool_geometry",
    "roi_pool_bin_bounds", "by_image", "channel_block", "channels_last",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Geometry
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


def _neighbours(v, size):
    """One axis of a bilinear sample at ``v`` (inside [-1, size]): the two neighbouring cells
    ``(low, high)`` and the weight of ``high``. Below 0 the coordinate is clamped to 0; at or
    past the last cell both neighbours are the last cell. In ``v``'s type."""
    T = type(v)
    if v <= T(0):
        v = T(0)
    low = int(v)
    if low >= size - 1:
        low = size - 1
        high = size - 1
        v = T(low)
    else:
        high = low + 1
    return low, high, v - T(low)


neighbours_cpu, neighbours_cuda = dual(_neighbours)
neighbours = neighbours_cpu


def _bilinear_weights(y, x, H, W):
    """Four neighbours and weights of the bilinear sample at ``(y, x)`` on an ``H x W`` map.

    Returns ``(y_low, x_low, y_high, x_high, w1, w2, w3, w4)`` with ``value = w1*f[y_low, x_low]
    + w2*f[y_low, x_high] + w3*f[y_high, x_low] + w4*f[y_high, x_high]``.
    A sample more than one cell outside the map (y < -1, y > H, ...) is 0: then ``y_low = -1`` and
    all weights are 0 (the sample still counts in the bin's mean). Inside, each axis is clamped
    as ``neighbours`` says. The test is written as ``not (inside)`` so that a NaN coordinate also
    lands in the "outside" branch. The weights have the coordinates' type.
    """
    T = type(y)
    if not (y >= T(-1) and y <= T(H) and x >= T(-1) and x <= T(W)):
        return -1, -1, -1, -1, T(0), T(0), T(0), T(0)
    y_low, y_high, ly = neighbours(y, H)
    x_low, x_high, lx = neighbours(x, W)
    hy = T(1) - ly
    hx = T(1) - lx
    return y_low, x_low, y_high, x_high, hy * hx, hy * lx, ly * hx, ly * lx


bilinear_weights_cpu, bilinear_weights_cuda = dual_calling(
    _bilinear_weights, neighbours=(neighbours_cpu, neighbours_cuda)
)
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
# Per-element math on the samples and bins
# ---------------------------------------------------------------------------------------------


def _bilinear_sum(v1, v2, v3, v4, w1, w2, w3, w4):
    """One bilinear sample from its four neighbours' values and weights (``bilinear_weights``)."""
    return w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4


bilinear_sum_cpu, bilinear_sum_cuda = dual(_bilinear_sum)


def _add_scaled_cpu(a, i, w, g):
    """``a[i] += w * g`` for a row of channels ``g``: the CPU kernels keep channels innermost."""
    row = a[i]
    for c in range(g.size):
        row[c] += w * g[c]


def _add_scaled_cuda(a, i, w, g):
    """``a[i] += w * g`` for one element, atomically: the GPU's threads share ``a``."""
    cuda.atomic.add(a, i, w * g)


add_scaled_cpu = numba.njit(inline="always", cache=True)(_add_scaled_cpu)
add_scaled_cuda = cuda.jit(device=True)(_add_scaled_cuda)
add_scaled = add_scaled_cpu


def _bilinear_scatter(a, i1, i2, i3, i4, w1, w2, w3, w4, g):
    """The backward of ``bilinear_sum``: ``a[i] += w * g`` at the four neighbours. On the CPU
    ``g`` is a row of channels and ``a[i]`` a row of a private buffer; on the GPU both are one
    element and the add is atomic (``add_scaled``). The neighbours coincide at the border: four
    adds, one after the other, keep every weight."""
    add_scaled(a, i1, w1, g)
    add_scaled(a, i2, w2, g)
    add_scaled(a, i3, w3, g)
    add_scaled(a, i4, w4, g)


bilinear_scatter_cpu, bilinear_scatter_cuda = dual_calling(
    _bilinear_scatter, add_scaled=(add_scaled_cpu, add_scaled_cuda)
)


def _max_step(v, best, where, idx):
    """One step of a bin's max scan: ``(v, idx)`` if ``v`` is strictly greater than ``best``, else
    ``(best, where)``, so the first maximum in scan order wins a tie. A select, no branch: the
    CPU's loop over channels stays vectorised."""
    gt = v > best
    return (v if gt else best), (idx if gt else where)


max_step_cpu, max_step_cuda = dual(_max_step)


# ---------------------------------------------------------------------------------------------
# Host side: the CPU kernels' layouts and partitions
# ---------------------------------------------------------------------------------------------


def by_image(rois, N):
    """RoI indices sorted (stably) by image; image n's RoIs are ``order[first[n]:first[n+1]]``."""
    batch = rois[:, 0].astype(np.int64)
    order = np.argsort(batch, kind="stable").astype(np.int64)
    first = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(batch, minlength=N)[:N], out=first[1:])
    return order, first


def channel_block(N, C):
    """Channels per backward task: enough tasks (about 4 per thread) to balance the load."""
    tasks_per_image = max(1, -(-4 * numba.get_num_threads() // max(N, 1)))
    return max(1, -(-C // min(C, tasks_per_image))) if C else 1


def channels_last(x):
    """``(N, C, H, W)`` -> contiguous ``(N, H, W, C)`` (no copy if the memory is already so)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
