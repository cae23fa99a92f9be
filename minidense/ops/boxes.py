"""Box utilities for detection: NMS, IoU, clipping, filtering and the box coder (torchvision's).

Boxes are ``(K, 4)`` rows ``(x1, y1, x2, y2)`` in pixels, one convention everywhere. These
functions need no gradient: they take NumPy arrays or Tensors (device tensors are copied to the
host) and return NumPy arrays.
"""

import math
import numbers

import numpy as np

from .. import checks
from ..kernels import nms as K
from ..tensor import Tensor

__all__ = [
    "nms",
    "batched_nms",
    "box_iou",
    "box_area",
    "clip_boxes_to_image",
    "remove_small_boxes",
    "BoxCoder",
]


BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # largest dw/dh decoded: a box grows at most 62.5x


def _host(a, name, fn):
    """A NumPy array from an array, a Tensor or a device array."""
    if isinstance(a, Tensor):
        return a.numpy()
    if hasattr(a, "copy_to_host") and not isinstance(a, np.ndarray):
        return a.copy_to_host()
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be an array or Tensor, got {type(a).__name__}") from e
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {name} must be numeric, got dtype {arr.dtype}")
    return arr


def _boxes(a, name, fn, finite=True):
    arr = _host(a, name, fn)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(
            f"{fn}: {name} must have shape (K, 4) as (x1, y1, x2, y2), got {arr.shape}"
        )
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if finite and not np.isfinite(arr).all():
        k = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{fn}: {name} row {k} is not finite: {arr[k].tolist()}")
    return arr


def _vector(a, name, fn, n, kind="f"):
    arr = _host(a, name, fn)
    if arr.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},) to match the boxes, got {arr.shape}")
    if kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{fn}: {name} contains NaN or infinity")
    if kind == "i" and arr.dtype.kind not in "biu":
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{fn}: {name} must hold integer category ids")
    return arr


def _number(v, name, fn):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
        raise ValueError(f"{fn}: {name} must be a finite number, got {v!r}")
    return float(v)


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression.

    Args:
        boxes (array[K, 4]): ``(x1, y1, x2, y2)``, with ``0 <= x1 < x2`` and ``0 <= y1 < y2``
            expected for sensible results.
        scores (array[K]): one score per box.
        iou_threshold (float): a box is dropped if it overlaps a kept, higher-scoring box with
            IoU **greater than** this.
    Returns:
        int64 array of the kept indices, by decreasing score (ties keep the input order).
    """
    fn = "nms"
    b = checks.box_corners(_boxes(boxes, "boxes", fn), fn)
    s = _vector(scores, "scores", fn, len(b))
    thr = _number(iou_threshold, "iou_threshold", fn)
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    cats = np.zeros(len(b), dtype=np.int64)
    return K.nms_cpu(b.astype(np.float64), K.nms_order(s), cats, thr)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Args:
        boxes (array[K, 4]), scores (array[K]), idxs (array[K]): integer category of each box;
        iou_threshold (float).
    Returns:
        int64 array of the kept indices, by decreasing score.
    """
    fn = "batched_nms"
    b = checks.box_corners(_boxes(boxes, "boxes", fn), fn)
    s = _vector(scores, "scores", fn, len(b))
    cats = _vector(idxs, "idxs", fn, len(b), kind="i").astype(np.int64)
    thr = _number(iou_threshold, "iou_threshold", fn)
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    # One greedy pass that compares categories (no coordinate-offset trick, which breaks for
    # negative coordinates and loses precision for large offsets).
    return K.nms_cpu(b.astype(np.float64), K.nms_order(s), cats, thr)


def box_area(boxes):
    """Areas ``(x2 - x1) * (y2 - y1)`` of ``boxes (K, 4)`` -> ``(K,)``."""
    return K.box_area_array(_boxes(boxes, "boxes", "box_area", finite=False))


def box_iou(boxes1, boxes2):
    """Pairwise IoU of ``boxes1 (N, 4)`` and ``boxes2 (M, 4)`` -> ``(N, M)`` (NaN for 0/0)."""
    a = _boxes(boxes1, "boxes1", "box_iou", finite=False)
    b = _boxes(boxes2, "boxes2", "box_iou", finite=False)
    return K.box_iou_array(a, b)


def clip_boxes_to_image(boxes, size):
    """Clip ``boxes (K, 4)`` to an image of ``size = (height, width)``: x to [0, W], y to [0, H]."""
    fn = "clip_boxes_to_image"
    b = _boxes(boxes, "boxes", fn, finite=False)
    if not (isinstance(size, (tuple, list)) and len(size) == 2):
        raise ValueError(f"{fn}: size must be (height, width), got {size!r}")
    height, width = (_number(v, "size", fn) for v in size)
    out = b.copy()
    out[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    return out


def remove_small_boxes(boxes, min_size):
    """Indices (int64) of the boxes whose width and height are both ``>= min_size``."""
    fn = "remove_small_boxes"
    b = _boxes(boxes, "boxes", fn, finite=False)
    m = _number(min_size, "min_size", fn)
    ws, hs = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.flatnonzero((ws >= m) & (hs >= m)).astype(np.int64)


class BoxCoder:
    """Encode boxes as offsets from reference boxes and back (R-CNN parametrisation).

    With centres ``(x, y)``, widths ``w = x2 - x1`` and heights ``h = y2 - y1`` of a proposal
    ``a`` and its target ``g``: ``dx = wx·(gx − ax)/aw``, ``dy = wy·(gy − ay)/ah``,
    ``dw = ww·log(gw/aw)``, ``dh = wh·log(gh/ah)``. Weights are (1, 1, 1, 1) for the RPN and
    (10, 10, 5, 5) for the box head; decoding clamps ``dw, dh`` at ``bbox_xform_clip`` so that
    ``exp`` cannot overflow.
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=BBOX_XFORM_CLIP):
        if not isinstance(weights, tuple | list | np.ndarray) or len(weights) != 4:
            raise ValueError(f"BoxCoder: weights must be 4 numbers (wx, wy, ww, wh), got {weights}")
        self.weights = tuple(_number(w, "weights", "BoxCoder") for w in weights)
        self.bbox_xform_clip = _number(bbox_xform_clip, "bbox_xform_clip", "BoxCoder")

    def __repr__(self):
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip:.4f})"

    def encode(self, reference_boxes, proposals):
        """Targets ``(K, 4)`` that move ``proposals (K, 4)`` onto ``reference_boxes (K, 4)``."""
        fn = "BoxCoder.encode"
        gt = _boxes(reference_boxes, "reference_boxes", fn)
        pr = _boxes(proposals, "proposals", fn)
        if gt.shape != pr.shape:
            raise ValueError(
                f"{fn}: reference_boxes {gt.shape} and proposals {pr.shape} must match"
            )
        wx, wy, ww, wh = self.weights
        aw, ah = pr[:, 2] - pr[:, 0], pr[:, 3] - pr[:, 1]
        ax, ay = pr[:, 0] + 0.5 * aw, pr[:, 1] + 0.5 * ah
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
        with np.errstate(divide="ignore", invalid="ignore"):
            d = [
                wx * (gx - ax) / aw,
                wy * (gy - ay) / ah,
                ww * np.log(gw / aw),
                wh * np.log(gh / ah),
            ]
        return np.stack(d, axis=1).astype(np.result_type(gt, pr), copy=False)

    def decode(self, rel_codes, boxes):
        """Apply ``rel_codes (K, 4·C)`` (C classes, or just ``(K, 4)``) to ``boxes (K, 4)``.

        Returns boxes of ``rel_codes``' shape and dtype.
        """
        fn = "BoxCoder.decode"
        codes = _host(rel_codes, "rel_codes", fn)
        if codes.ndim != 2 or codes.shape[1] % 4 or codes.shape[1] == 0:
            raise ValueError(f"{fn}: rel_codes must have shape (K, 4*C), got {codes.shape}")
        if codes.dtype.kind != "f":
            codes = codes.astype(np.float64)
        b = _boxes(boxes, "boxes", fn).astype(codes.dtype, copy=False)
        if len(b) != len(codes):
            raise ValueError(f"{fn}: {len(codes)} rel_codes rows but {len(b)} boxes")
        wx, wy, ww, wh = self.weights
        widths, heights = b[:, 2:3] - b[:, 0:1], b[:, 3:4] - b[:, 1:2]
        cx, cy = b[:, 0:1] + 0.5 * widths, b[:, 1:2] + 0.5 * heights
        dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy
        dw = np.minimum(codes[:, 2::4] / ww, self.bbox_xform_clip)
        dh = np.minimum(codes[:, 3::4] / wh, self.bbox_xform_clip)
        px, py = dx * widths + cx, dy * heights + cy
        half_w, half_h = 0.5 * np.exp(dw) * widths, 0.5 * np.exp(dh) * heights
        out = np.empty_like(codes)
        out[:, 0::4], out[:, 1::4] = px - half_w, py - half_h
        out[:, 2::4], out[:, 3::4] = px + half_w, py + half_h
        return out
