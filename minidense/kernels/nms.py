"""Non-maximum suppression and box IoU on ``(K, 4)`` ``(x1, y1, x2, y2)`` NumPy arrays.

Greedy NMS as torchvision computes it: visit the boxes by decreasing score; keep a box unless a
box kept before it overlaps it with IoU *strictly greater* than the threshold. Areas are
``(x2 - x1) * (y2 - y1)`` (no +1). A zero-area pair has IoU 0 / 0 = NaN, which suppresses nothing.

The loop is serial: each decision depends on the previous ones, and for the few thousand
proposals of a detector it takes well under a millisecond per thousand boxes.
"""

import numba
import numpy as np

__all__ = ["nms_cpu", "nms_order", "box_iou_array", "box_area_array"]


@numba.njit(cache=True, error_model="numpy")  # 0/0 gives NaN, not an exception
def nms_cpu(boxes, order, categories, iou_threshold):
    """Greedy NMS over ``boxes (K, 4)`` float64 visited in ``order``; returns the kept indices.

    Only boxes of the same ``categories`` value suppress each other (all zeros: plain NMS), so
    batched (per-class) NMS is the same loop. The result follows ``order``.
    """
    K = boxes.shape[0]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(K, dtype=np.bool_)
    keep = np.empty(K, dtype=np.int64)
    n_keep = 0
    for a in range(K):
        i = order[a]
        if suppressed[i]:
            continue
        keep[n_keep] = i
        n_keep += 1
        x1, y1, x2, y2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        for b in range(a + 1, K):
            j = order[b]
            if suppressed[j] or categories[j] != categories[i]:
                continue
            w = min(x2, boxes[j, 2]) - max(x1, boxes[j, 0])
            h = min(y2, boxes[j, 3]) - max(y1, boxes[j, 1])
            inter = max(w, 0.0) * max(h, 0.0)
            iou = inter / (areas[i] + areas[j] - inter)
            if iou > iou_threshold:
                suppressed[j] = True
    return keep[:n_keep].copy()


def nms_order(scores):
    """Indices by decreasing score; ties keep their input order (a stable sort)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable").astype(np.int64)


def box_area_array(boxes):
    """``(K, 4)`` -> ``(K,)`` areas ``(x2 - x1) * (y2 - y1)``."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou_array(a, b):
    """IoU matrix ``(N, M)`` of ``a (N, 4)`` and ``b (M, 4)``; 0/0 (two empty boxes) is NaN."""
    area_a, area_b = box_area_array(a), box_area_array(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area_a[:, None] + area_b[None, :] - inter)
