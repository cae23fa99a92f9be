"""Slow, plain-Python references for the RoI ops and NMS, written straight from the formulas in
DESIGN.md ("Exact semantics"). They share no code with ``minidense.kernels``.

The box geometry is computed in the features' dtype ``T``, as torchvision does: the boxes and the
scale are converted to ``T``, and every step is a NumPy ``T`` scalar operation (NumPy 2 keeps
``float32`` there), so a float32 sample that sits on a cell edge lands where the kernels put it.
The values are then accumulated in float64."""

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np


def c_round(v):
    """C ``round``: halves away from zero (Decimal's ROUND_HALF_UP), exact for every float."""
    return float(Decimal(float(v)).to_integral_value(rounding=ROUND_HALF_UP))


def _align_box(roi, scale, PH, PW, sampling_ratio, aligned, quantize, T):
    offset = T(0.5) if aligned else T(0)
    coords = [T(v) * T(scale) for v in roi[1:]]
    if quantize:
        coords = [T(c_round(v)) for v in coords]
    x1, y1, x2, y2 = (v - offset for v in coords)
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, T(1)), max(rh, T(1))
    bh, bw = rh / T(PH), rw / T(PW)
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(bh)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(bw)
    return y1, x1, bh, bw, max(gh, 0), max(gw, 0)


def _samples(roi, H, W, scale, PH, PW, sampling_ratio, aligned, quantize, T):
    """Yield (ph, pw, count, [(weight, y, x), ...]) for every sample of every bin."""
    y1, x1, bh, bw, gh, gw = _align_box(roi, scale, PH, PW, sampling_ratio, aligned, quantize, T)
    count = max(gh * gw, 1)
    for ph in range(PH):
        for pw in range(PW):
            for iy in range(gh):
                for ix in range(gw):
                    y = y1 + T(ph) * bh + (T(iy) + T(0.5)) * bh / T(gh)
                    x = x1 + T(pw) * bw + (T(ix) + T(0.5)) * bw / T(gw)
                    yield ph, pw, count, _bilinear(y, x, H, W, T)


def _bilinear(y, x, H, W, T):
    if y < -1 or y > H or x < -1 or x > W:
        return []
    y, x = max(y, T(0)), max(x, T(0))
    y0, x0 = math.floor(y), math.floor(x)
    if y0 >= H - 1:
        y0 = y1 = H - 1
        y = T(y0)
    else:
        y1 = y0 + 1
    if x0 >= W - 1:
        x0 = x1 = W - 1
        x = T(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - T(y0), x - T(x0)
    hy, hx = T(1) - ly, T(1) - lx
    return [(hy * hx, y0, x0), (hy * lx, y0, x1), (ly * hx, y1, x0), (ly * lx, y1, x1)]


def roi_align_ref(x, rois, PH, PW, scale=1.0, sampling_ratio=-1, aligned=False, quantize=False):
    """RoIAlign (``quantize=True``: RoIWarp) forward, float64 loops -> (K, C, PH, PW); the
    geometry in ``x``'s dtype."""
    T = np.asarray(x).dtype.type
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW))
    for k, roi in enumerate(np.asarray(rois, dtype=T)):
        n = int(roi[0])
        for ph, pw, count, taps in _samples(roi, H, W, scale, PH, PW, sampling_ratio, aligned,
                                            quantize, T):  # fmt: skip
            for w, yy, xx in taps:
                out[k, :, ph, pw] += w * x[n, :, yy, xx] / count
    return out


def roi_align_backward_ref(
    grad, rois, shape, scale=1.0, sampling_ratio=-1, aligned=False, quantize=False
):
    """Transpose of roi_align_ref: scatter grad (K, C, PH, PW) -> (N, C, H, W); the geometry in
    ``grad``'s dtype."""
    T = np.asarray(grad).dtype.type
    N, C, H, W = shape
    K, _, PH, PW = grad.shape
    gx = np.zeros(shape)
    for k, roi in enumerate(np.asarray(rois, dtype=T)):
        n = int(roi[0])
        for ph, pw, count, taps in _samples(roi, H, W, scale, PH, PW, sampling_ratio, aligned,
                                            quantize, T):  # fmt: skip
            for w, yy, xx in taps:
                gx[n, :, yy, xx] += w * grad[k, :, ph, pw] / count
    return gx


def roi_pool_ref(x, rois, PH, PW, scale=1.0):
    """RoIPool forward -> (out, argmax); argmax is h*W + w, -1 (and out 0) for an empty bin.
    The geometry in ``x``'s dtype ``T``."""
    x = np.asarray(x)
    T = x.dtype.type
    N, C, H, W = x.shape
    out = np.zeros((len(rois), C, PH, PW), dtype=x.dtype)
    arg = np.full((len(rois), C, PH, PW), -1, dtype=np.int64)
    for k, roi in enumerate(np.asarray(rois, dtype=T)):
        n = int(roi[0])
        sx, sy, ex, ey = (int(c_round(v * T(scale))) for v in roi[1:])
        # bin = roi size / pooled
        bh, bw = T(max(ey - sy + 1, 1)) / T(PH), T(max(ex - sx + 1, 1)) / T(PW)
        for ph in range(PH):
            for pw in range(PW):
                h0 = min(max(math.floor(T(ph) * bh) + sy, 0), H)
                h1 = min(max(math.ceil(T(ph + 1) * bh) + sy, 0), H)
                w0 = min(max(math.floor(T(pw) * bw) + sx, 0), W)
                w1 = min(max(math.ceil(T(pw + 1) * bw) + sx, 0), W)
                for c in range(C):
                    best, where = None, -1
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if best is None or x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], h * W + w
                    if best is not None:
                        out[k, c, ph, pw], arg[k, c, ph, pw] = best, where
    return out, arg


def roi_pool_backward_ref(grad, argmax, rois, shape):
    N, C, H, W = shape
    gx = np.zeros((N, C, H * W))
    for k, roi in enumerate(np.asarray(rois)):
        for c in range(C):
            for i, a in enumerate(argmax[k, c].ravel()):
                if a >= 0:
                    gx[int(roi[0]), c, a] += grad[k, c].ravel()[i]
    return gx.reshape(shape)


def iou_ref(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float("nan")


def nms_ref(boxes, scores, thr, cats=None):
    """Greedy NMS: highest score first (ties: input order); drop IoU > thr with a kept box."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(
            not (iou_ref(boxes[i], boxes[j]) > thr)
            for j in keep
            if cats is None or cats[i] == cats[j]
        ):
            keep.append(i)
    return keep
