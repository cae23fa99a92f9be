"""interpolate: nearest and bilinear resampling, forward and backward, on the CPU and on CUDA.

Coordinate rules (PyTorch's, docs/ops.md), per axis, for an output index ``dst``:

- bilinear, align_corners=True:  ``src = dst·(in-1)/(out-1)`` (0 when out = 1), so the corner
  pixels of input and output coincide.
- bilinear, align_corners=False: ``src = max((dst + 0.5)·s - 0.5, 0)`` with ``s = in/out`` when a
  size is given and ``s = 1/scale_factor`` when a scale factor is given (pixel *areas* align).
  e.g. in 5, scale_factor 1.5 -> out 7: s = 0.667 from the factor but 5/7 = 0.714 from the size,
  so the two calls sample different points.
- both: neighbours ``floor(src)`` and ``min(floor(src) + 1, in - 1)``, weight ``src - floor(src)``.
- nearest: ``src = min(floor(dst·s), in - 1)``, computed in float32 like PyTorch.
- bilinear coordinates and weights are computed in the input's dtype, like PyTorch (whose
  ``opmath_t`` of float32 is float32): every constant and integer is cast to it, so compiled code
  does no float64 arithmetic for float32 data.
- An axis whose size does not change is copied as is, and nearest maps ``dst -> dst // 2`` when
  the size exactly doubles - PyTorch's CPU shortcuts, which differ from the formulas for factors
  such as 1.1 (in 5 -> out 5) or 2.1 (in 5 -> out 10).

The per-axis source indices and weights (``nearest_source``, ``linear_source``) and a sample's
value and its backward weights (``bilinear_value``, ``bilinear_taps``) are written once. They depend
only on the output row or column, not on the channel, so the CPU kernels tabulate the per-axis
ones once per call, while a CUDA thread (one per output element) computes its own. CPU backward
passes are parallel over (n, c) planes, each iteration owning its plane (race-free); the CUDA
backward passes scatter with ``cuda.atomic.add``, so their float rounding order is not
deterministic. Zero insertion (bed of nails) is in ``bed_of_nails.py``.
"""

import math

import numba
import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, for_each_element, launch, owned_plane

__all__ = ["interpolate_plan", "interpolate_forward", "interpolate_backward"]


# ----------------------------------------------------------------------------- per-axis math


def _nearest_source(dst, in_size, out_size, scale):
    """Input index for output index ``dst``; ``scale`` is float32, the product too (PyTorch)."""
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    return min(int(math.floor(np.float32(dst) * scale)), in_size - 1)


def _linear_source(dst, in_size, out_size, scale, align_corners):
    """(i0, i1, l1): neighbours of output index ``dst`` and the weight of ``i1``, in ``scale``'s
    type ``T``."""
    T = type(scale)
    if out_size == in_size:
        return dst, dst, T(0)
    if align_corners:
        src = scale * T(dst)
    else:
        src = max(scale * (T(dst) + T(0.5)) - T(0.5), T(0))
    i0 = min(int(math.floor(src)), in_size - 1)
    l1 = min(max(src - T(i0), T(0)), T(1))
    i1 = i0 + 1 if i0 < in_size - 1 else i0
    return i0, i1, l1


def _bilinear_value(plane, y0, y1, ly, x0, x1, lx):
    one = type(ly)(1)
    return (one - ly) * ((one - lx) * plane[y0, x0] + lx * plane[y0, x1]) + ly * (
        (one - lx) * plane[y1, x0] + lx * plane[y1, x1]
    )


def _bilinear_taps(ly, lx):
    """The four weights of a bilinear sample: (y0, x0), (y0, x1), (y1, x0), (y1, x1)."""
    one = type(ly)(1)
    return (one - ly) * (one - lx), (one - ly) * lx, ly * (one - lx), ly * lx


nearest_source_cpu, nearest_source_cuda = dual(_nearest_source)
linear_source_cpu, linear_source_cuda = dual(_linear_source)
bilinear_value_cpu, bilinear_value_cuda = dual(_bilinear_value)
bilinear_taps_cpu, bilinear_taps_cuda = dual(_bilinear_taps)


@numba.njit(cache=True)
def _nearest_table(in_size, out_size, scale):
    t = np.empty(out_size, dtype=np.int64)
    for d in range(out_size):
        t[d] = nearest_source_cpu(d, in_size, out_size, scale)
    return t


@numba.njit(cache=True)
def _linear_table(in_size, out_size, scale, align_corners):
    i0 = np.empty(out_size, dtype=np.int64)
    i1 = np.empty(out_size, dtype=np.int64)
    l1 = np.empty(out_size, dtype=type(scale))
    for d in range(out_size):
        i0[d], i1[d], l1[d] = linear_source_cpu(d, in_size, out_size, scale, align_corners)
    return i0, i1, l1


# ----------------------------------------------------------------------------- plan


def interpolate_plan(in_hw, size=None, scale_factor=None, mode="nearest", align_corners=None,
                     dtype=np.float64):  # fmt: skip
    """``(out_hw, (scale_h, scale_w), align_corners)`` of interpolate's (checked) arguments.

    The scales are what the coordinate rules multiply by: float32 for nearest, ``dtype`` (the
    input's) for bilinear.
    """
    align = bool(align_corners)
    if size is not None:
        out_hw = tuple(int(v) for v in (size if isinstance(size, tuple | list) else (size, size)))
        factors = (None, None)
    else:
        pair = scale_factor if isinstance(scale_factor, tuple | list) else (scale_factor,) * 2
        factors = tuple(float(f) for f in pair)
        out_hw = tuple(int(math.floor(n * f)) for n, f in zip(in_hw, factors, strict=True))
    scales = []
    for n_in, n_out, f in zip(in_hw, out_hw, factors, strict=True):
        if mode == "nearest":
            # PyTorch: float(1.0 / scale_factor), or float(in) / out, in single precision.
            s = np.float32(1.0 / f) if f is not None else np.float32(n_in) / np.float32(n_out)
        else:
            T = np.dtype(dtype).type  # PyTorch: in the input's dtype, 1 / f in double first
            if align:
                s = T(n_in - 1) / T(n_out - 1) if n_out > 1 else T(0)
            else:
                s = T(1.0 / f) if f is not None else T(n_in) / T(n_out)
        scales.append(s)
    return out_hw, tuple(scales), align


# ----------------------------------------------------------------------------- nearest


@cpu_kernel
def nearest_forward_cpu(x, out, src_h, src_w):
    N, C, Ho, Wo = out.shape
    for r in prange(N * C * Ho):
        n, c, oh = r // (C * Ho), (r // Ho) % C, r % Ho
        row = x[n, c, src_h[oh]]
        for ow in range(Wo):
            out[n, c, oh, ow] = row[src_w[ow]]


@cpu_kernel
def nearest_backward_cpu(grad_out, grad_in, src_h, src_w):
    """Each output gradient goes to its source pixel; one (n, c) plane per iteration."""
    N, C, Ho, Wo = grad_out.shape
    for nc in prange(N * C):
        n, c, plane = owned_plane(grad_in, nc)
        for oh in range(Ho):
            row = plane[src_h[oh]]
            for ow in range(Wo):
                row[src_w[ow]] += grad_out[n, c, oh, ow]


def _nearest(x, out, n, c, oh, ow, params):
    """out[n, c, oh, ow] = x at its nearest source pixel; backward: out's gradient added there
    (atomically: several outputs share a source)."""
    scale_h, scale_w, backward = params
    ih = nearest_source_cuda(oh, x.shape[2], out.shape[2], scale_h)
    iw = nearest_source_cuda(ow, x.shape[3], out.shape[3], scale_w)
    if backward:
        cuda.atomic.add(x, (n, c, ih, iw), out[n, c, oh, ow])
    else:
        out[n, c, oh, ow] = x[n, c, ih, iw]


nearest_cuda = for_each_element(_nearest)


# ----------------------------------------------------------------------------- bilinear


@cpu_kernel
def bilinear_forward_cpu(x, out, ty0, ty1, tly, tx0, tx1, tlx):
    N, C, Ho, Wo = out.shape
    for r in prange(N * C * Ho):
        n, c, oh = r // (C * Ho), (r // Ho) % C, r % Ho
        plane = x[n, c]
        y0, y1, ly = ty0[oh], ty1[oh], tly[oh]
        for ow in range(Wo):
            out[n, c, oh, ow] = bilinear_value_cpu(plane, y0, y1, ly, tx0[ow], tx1[ow], tlx[ow])


@cpu_kernel
def bilinear_backward_cpu(grad_out, grad_in, ty0, ty1, tly, tx0, tx1, tlx):
    """Spread each output gradient over its four neighbours; one (n, c) plane per iteration."""
    N, C, Ho, Wo = grad_out.shape
    for nc in prange(N * C):
        n, c, plane = owned_plane(grad_in, nc)
        for oh in range(Ho):
            y0, y1, ly = ty0[oh], ty1[oh], tly[oh]
            for ow in range(Wo):
                x0, x1, lx = tx0[ow], tx1[ow], tlx[ow]
                g = grad_out[n, c, oh, ow]
                w00, w01, w10, w11 = bilinear_taps_cpu(ly, lx)
                plane[y0, x0] += w00 * g
                plane[y0, x1] += w01 * g
                plane[y1, x0] += w10 * g
                plane[y1, x1] += w11 * g


def _bilinear(x, out, n, c, oh, ow, params):
    """out[n, c, oh, ow] = the bilinear sample of x; backward: out's gradient spread over the
    sample's four neighbours with the same weights (atomically)."""
    scale_h, scale_w, align_corners, backward = params
    y0, y1, ly = linear_source_cuda(oh, x.shape[2], out.shape[2], scale_h, align_corners)
    x0, x1, lx = linear_source_cuda(ow, x.shape[3], out.shape[3], scale_w, align_corners)
    if backward:
        g = out[n, c, oh, ow]
        w00, w01, w10, w11 = bilinear_taps_cuda(ly, lx)
        cuda.atomic.add(x, (n, c, y0, x0), w00 * g)
        cuda.atomic.add(x, (n, c, y0, x1), w01 * g)
        cuda.atomic.add(x, (n, c, y1, x0), w10 * g)
        cuda.atomic.add(x, (n, c, y1, x1), w11 * g)
    else:
        out[n, c, oh, ow] = bilinear_value_cuda(x[n, c], y0, y1, ly, x0, x1, lx)


bilinear_cuda = for_each_element(_bilinear)


# ----------------------------------------------------------------------------- host wrappers


def _resample(src, shape, in_hw, plan, mode, backward):
    """Forward (``src`` the input, ``shape`` the output's) or backward (``src`` the output's
    gradient, ``shape`` the input's) of one interpolation."""
    (Ho, Wo), (sh, sw), align = plan
    H, W = in_hw
    if gpu.is_device_array(src):
        dst = (gpu.zeros if backward else gpu.empty)(shape, src.dtype)  # a scatter adds to 0
        x, out = (dst, src) if backward else (src, dst)
        if mode == "nearest":
            nearest_cuda[launch(out.size)](x, out, (sh, sw, backward))
        else:
            bilinear_cuda[launch(out.size)](x, out, (sh, sw, align, backward))
        return dst
    src = np.ascontiguousarray(src)  # one compiled layout per kernel, not one per stride pattern
    dst = np.empty(shape, dtype=src.dtype)
    if mode == "nearest":
        kernel = nearest_backward_cpu if backward else nearest_forward_cpu
        kernel(src, dst, _nearest_table(H, Ho, sh), _nearest_table(W, Wo, sw))
    else:
        kernel = bilinear_backward_cpu if backward else bilinear_forward_cpu
        kernel(src, dst, *_linear_table(H, Ho, sh, align), *_linear_table(W, Wo, sw, align))
    return dst


def interpolate_forward(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """x (N, C, H, W) -> (N, C, Ho, Wo), resampled by ``mode`` (see the module docstring)."""
    plan = interpolate_plan(x.shape[2:], size, scale_factor, mode, align_corners, x.dtype)
    shape = (*x.shape[:2], *plan[0])
    return _resample(x, shape, x.shape[2:], plan, mode, backward=False)


def interpolate_backward(
    grad_out, input_shape, size=None, scale_factor=None, mode="nearest", align_corners=None
):
    """Gradient of interpolate with respect to its input, shape ``input_shape`` (N, C, H, W)."""
    in_hw = tuple(input_shape[2:])
    plan = interpolate_plan(in_hw, size, scale_factor, mode, align_corners, grad_out.dtype)
    return _resample(grad_out, tuple(input_shape), in_hw, plan, mode, backward=True)
