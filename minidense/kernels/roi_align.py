"""RoIAlign and RoIWarp kernels, forward and backward, on the CPU and on CUDA.

``out[k, c, ph, pw]`` is the mean of the bilinear samples of bin ``(ph, pw)`` of RoI ``k``
(``roi.py``: its geometry and sample positions, and the corner sum and scatter of one sample);
RoIWarp is the same with the box first rounded to the feature grid (``quantize``). The backward
spreads each output's gradient over the same samples with the same weights.

CPU: the features are read channels-last, ``(N, H·W, C)``, so that each sample's weights, computed
once, apply to a contiguous loop over channels; the forward is parallel over RoIs, the backward
over (image, channel block), each iteration owning its slice of ``grad_x`` (race-free,
deterministic). CUDA: one kernel for both directions, one thread per ``(k, c, ph, pw)``, walking
the bin's samples: the forward gathers them, the backward scatters into them with atomics (the
order of the additions, and so the last bits, may vary from run to run).
"""

import numba
import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, launch, unravel_nchw_cuda
from .roi import (
    bilinear_scatter_cpu,
    bilinear_scatter_cuda,
    bilinear_sum_cpu,
    bilinear_sum_cuda,
    bilinear_weights_cpu,
    bilinear_weights_cuda,
    by_image,
    channel_block,
    channels_last,
    roi_align_geometry_cpu,
    roi_align_geometry_cuda,
    sample_coord_cpu,
    sample_coord_cuda,
)

__all__ = ["roi_align_forward", "roi_align_backward", "roi_warp_forward", "roi_warp_backward"]


# ---------------------------------------------------------------------------------------------
# CPU: flat views, ``(N, H*W, C)`` features and ``(K, C, PH*PW)`` outputs, so that no integer
# division sits in an inner loop.
# ---------------------------------------------------------------------------------------------


@numba.njit(inline="always", cache=True)
def _walk_samples_cpu(src, dst, H, W, PH, PW, sy, sx, bh, bw, gh, gw, backward):
    """Every bilinear sample of one RoI, bin by bin, on channel rows: the forward adds each
    sample of the features ``src (H*W, C)`` to its bin's row of ``dst (PH*PW, C)``; the backward
    (``backward``) scatters its bin's gradient row ``src[bin] (cw,)`` onto ``dst (H*W, cw)``.
    The weights of a sample are computed once and applied to a contiguous (vectorised) loop
    over channels."""
    wv = np.empty(4, dtype=dst.dtype)  # the weights cast once to the data's dtype
    for ph in range(PH):
        for iy in range(gh):
            y = sample_coord_cpu(sy, ph, bh, iy, gh)
            for pw in range(PW):
                b = ph * PW + pw
                for ix in range(gw):
                    x = sample_coord_cpu(sx, pw, bw, ix, gw)
                    yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cpu(y, x, H, W)
                    if yl < 0:
                        continue  # outside the map: 0 (but it counts in the bin's mean)
                    wv[0] = w1
                    wv[1] = w2
                    wv[2] = w3
                    wv[3] = w4
                    i1, i2, i3, i4 = yl * W + xl, yl * W + xh, yh * W + xl, yh * W + xh
                    if backward:
                        bilinear_scatter_cpu(dst, i1, i2, i3, i4, wv[0], wv[1], wv[2], wv[3],
                                             src[b])  # fmt: skip
                    else:
                        a, v1, v2, v3, v4 = dst[b], src[i1], src[i2], src[i3], src[i4]
                        for c in range(a.size):
                            a[c] += bilinear_sum_cpu(
                                v1[c], v2[c], v3[c], v4[c], wv[0], wv[1], wv[2], wv[3]
                            )


@cpu_kernel
def roi_align_forward_cpu(xcl, H, rois, out, PH, spatial_scale, sampling_ratio, aligned, quantize):
    """``xcl (N, H*W, C)`` channels-last features, ``rois (K, 5)`` -> ``out (K, C, PH*PW)``;
    one ``prange`` iteration per RoI."""
    N, HW, C = xcl.shape
    W = HW // H
    K, _, P = out.shape
    PW = P // PH
    for k in prange(K):
        sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cpu(
            rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        acc = np.zeros((P, C), dtype=xcl.dtype)
        _walk_samples_cpu(xcl[int(rois[k, 0])], acc, H, W, PH, PW, sy, sx, bh, bw, gh, gw, False)
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
        for j in range(first[n], first[n + 1]):
            k = order[j]
            sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cpu(
                rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
            )
            for c in range(cw):
                for b in range(P):
                    g[b, c] = grad_out[k, c0 + c, b] * inv_count
            _walk_samples_cpu(g, acc, H, W, PH, PW, sy, sx, bh, bw, gh, gw, True)
        for c in range(cw):
            for p in range(HW):
                grad_x[n, c0 + c, p] = acc[p, c]


# ---------------------------------------------------------------------------------------------
# CUDA: one kernel, both directions
# ---------------------------------------------------------------------------------------------


@cuda.jit
def roi_align_cuda(
    x, rois, out, spatial_scale, sampling_ratio, aligned, quantize, backward
):  # fmt: skip
    """Forward: ``out (K, C, PH, PW)`` = the bins' sample means of ``x (N, C, H, W)``.
    Backward: ``x`` (zeroed) += each bin's gradient in ``out``, spread over the same samples, with
    ``cuda.atomic.add`` (overlapping RoIs add in an unspecified order: the last bits may vary)."""
    N, C, H, W = x.shape
    K, _, PH, PW = out.shape
    T = x.dtype.type
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, K * C * PH * PW, step):
        k, c, ph, pw = unravel_nchw_cuda(e, C, PH, PW)
        n = int(rois[k, 0])
        sy, sx, bh, bw, gh, gw, inv_count = roi_align_geometry_cuda(
            rois, k, spatial_scale, PH, PW, sampling_ratio, aligned, quantize
        )
        if n < 0 or n >= N:
            gh = 0  # a bad batch index (not validated on the device) reads nothing: output 0
        g = out[k, c, ph, pw] * inv_count if backward else T(0)
        acc = T(0)
        for iy in range(gh):
            y = sample_coord_cuda(sy, ph, bh, iy, gh)
            for ix in range(gw):
                xx = sample_coord_cuda(sx, pw, bw, ix, gw)
                yl, xl, yh, xh, w1, w2, w3, w4 = bilinear_weights_cuda(y, xx, H, W)
                if yl < 0:
                    continue
                if backward:
                    bilinear_scatter_cuda(
                        x, (n, c, yl, xl), (n, c, yl, xh), (n, c, yh, xl), (n, c, yh, xh),
                        w1, w2, w3, w4, g,
                    )  # fmt: skip
                else:
                    acc += bilinear_sum_cuda(
                        x[n, c, yl, xl], x[n, c, yl, xh], x[n, c, yh, xl], x[n, c, yh, xh],
                        w1, w2, w3, w4,
                    )  # fmt: skip
        if not backward:
            out[k, c, ph, pw] = acc * inv_count


# ---------------------------------------------------------------------------------------------
# Host wrappers: allocate and launch (the ops validated every argument)
# ---------------------------------------------------------------------------------------------


def _cuda(x, rois, out, spatial_scale, sampling_ratio, aligned, quantize, backward):
    if out.size:
        scale = x.dtype.type(spatial_scale)
        roi_align_cuda[launch(out.size)](
            x, rois, out, scale, int(sampling_ratio), bool(aligned), quantize, backward
        )


def _forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, quantize):
    PH, PW = output_size
    N, C, H, W = x.shape
    K = rois.shape[0]
    if gpu.is_device_array(x):
        out = gpu.empty((K, C, PH, PW), x.dtype)
        _cuda(x, rois, out, spatial_scale, sampling_ratio, aligned, quantize, False)
        return out
    scale, sr = x.dtype.type(spatial_scale), int(sampling_ratio)
    out = np.empty((K, C, PH, PW), dtype=x.dtype)
    if out.size:
        xcl = channels_last(x).reshape(N, H * W, C)
        flat = out.reshape(K, C, PH * PW)
        rois = np.ascontiguousarray(rois)
        roi_align_forward_cpu(xcl, H, rois, flat, PH, scale, sr, bool(aligned), quantize)
    return out


def _backward(grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, quantize):
    N, C, H, W = (int(s) for s in input_shape)
    if gpu.is_device_array(grad_out):
        grad_x = gpu.zeros((N, C, H, W), grad_out.dtype)  # the scatter adds to 0
        _cuda(grad_x, rois, grad_out, spatial_scale, sampling_ratio, aligned, quantize, True)
        return grad_x
    scale, sr = grad_out.dtype.type(spatial_scale), int(sampling_ratio)
    if grad_out.size == 0:
        return np.zeros((N, C, H, W), dtype=grad_out.dtype)
    rois = np.ascontiguousarray(rois, dtype=grad_out.dtype)
    grad_out = np.ascontiguousarray(grad_out)
    K, _, PH, PW = grad_out.shape
    grad_x = np.empty((N, C, H * W), dtype=grad_out.dtype)
    order, first = by_image(rois, N)
    roi_align_backward_cpu(
        grad_out.reshape(K, C, PH * PW), PH, rois, order, first, grad_x, W,
        channel_block(N, C), scale, sr, bool(aligned), quantize,
    )  # fmt: skip
    return grad_x.reshape(N, C, H, W)


def roi_align_forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign: ``x (N, C, H, W)``, ``rois (K, 5)`` in ``x``'s dtype and place, ``output_size
    (PH, PW)`` -> ``(K, C, PH, PW)``. ``sampling_ratio <= 0`` samples ``ceil(roi_size / output
    size)`` points per bin and axis."""
    return _forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, False)


def roi_align_backward(
    grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """Gradient of roi_align w.r.t. the features: ``grad_out (K, C, PH, PW)`` -> ``(N, C, H, W)``.

    CPU: parallel and deterministic. CUDA: atomics, non-deterministic summation order.
    """
    return _backward(grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, False)


def roi_warp_forward(x, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIWarp: the box snapped to the feature grid (``round(x*scale)``), sampled as RoIAlign."""
    return _forward(x, rois, output_size, spatial_scale, sampling_ratio, aligned, True)


def roi_warp_backward(
    grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False
):
    """Gradient of roi_warp w.r.t. the features (see roi_align_backward)."""
    return _backward(grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned, True)
