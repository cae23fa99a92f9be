"""COCO-style box and mask average precision, computed exactly as pycocotools computes it:
the IoU tables, the per-image matching, and the accumulation into precision/recall and the 12
summary numbers. The evaluator that feeds it (``COCOEvaluator``) is in ``coco.py``; the checks
of its inputs in ``coco_inputs.py``.

We reproduce ``pycocotools.cocoeval.COCOeval`` (evaluate → accumulate → summarize) for
``iouType="bbox"`` and ``"segm"`` with the default parameters, without depending on pycocotools
(the tests use it as the oracle; all 12 summary numbers agree to 1e-12, bit for bit in practice):

* IoU thresholds ``0.50:0.05:0.95`` (T = 10), recall points ``0:0.01:1`` (R = 101), both made with
  ``np.linspace`` like pycocotools (``np.arange`` drifts, and a threshold of 0.7000000000000001
  would change which detections match).
* Per image and category, detections sorted by score, highest first, with a *stable* sort (ties keep
  the order in which they were given), and cut to the top ``maxDets = 100``. The cut is per image
  **per category**, as in ``COCOeval.evaluateImg``: an image may keep up to 100 detections of each
  class. AR1 / AR10 use the top 1 / 10 per image and category the same way.
* Greedy matching, detection by detection in score order: a detection takes the still unmatched
  ground truth of highest IoU >= t (ties go to the later ground truth, as in pycocotools' loop);
  ground truths outside the area range are "ignored" and are only matched when no regular one is
  available; a detection matched to an ignored ground truth is ignored, and so is an unmatched
  detection whose own area is outside the range.
* Area ranges all / small / medium / large = [0, 1e10], [0, 32²], [32², 96²], [96², 1e10], bounds
  inclusive on both sides (an area of exactly 32² is both small and medium, as in pycocotools).
  Ground-truth area is the mask pixel count when the target has masks (COCO's ``area`` field),
  the box area ``w*h`` otherwise. Detection area is ``w*h`` for box AP and the mask pixel count for
  mask AP (what ``COCO.loadRes`` stores).
* Precision made monotone (running max from the end) and read at the 101 recall points with
  ``np.searchsorted(recall, points, side="left")``; points past the last recall read 0.
* Means over all (threshold, recall point, category) cells that are not -1. A category without
  ground truth (in the area range) is -1 and left out of the mean. When every cell is -1 (no ground
  truth at all in that slice) the number is **-1.0**, exactly as pycocotools reports it: read -1 as
  "undefined", never as a score. ``format_table`` prints it as ``-``.

No crowd annotations (``iscrowd`` is always 0 in our data; a target with crowds is rejected).

Box IoU follows pycocotools' C code (``bbIou``) operation for operation on ``(x, y, w, h)`` boxes,
with no ``+1`` on widths. Mask IoU counts pixels: intersections come from one matrix product of the
flattened masks, so the whole (D, G) table costs one BLAS call.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "IOU_THRESHOLDS", "RECALL_POINTS", "MAX_DETS", "AREA_RANGES", "STAT_NAMES",
    "box_iou_xywh", "mask_iou", "flatten_masks", "outside_area_ranges", "match_image",
    "accumulate_records", "mean_defined", "summarize_arrays",
]  # fmt: skip

# Same calls as pycocotools' Params.setDetParams, so the floats are bit-identical.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = (
    ("all", 0, 1e5**2),
    ("small", 0, 32**2),
    ("medium", 32**2, 96**2),
    ("large", 96**2, 1e5**2),
)
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)

# Pixels per matrix-product chunk in mask_iou. Below 2**24 every partial sum of 0/1 products is an
# integer that float32 holds exactly, so the float32 BLAS call counts pixels without error.
_MASK_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# IoU tables
# --------------------------------------------------------------------------------------------
def box_iou_xywh(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of boxes ``dt (D, 4)`` and ``gt (G, 4)`` in ``(x, y, w, h)``; returns ``(D, G)`` float64.

    Operation for operation pycocotools' ``bbIou`` (no ``+1``; boxes that do not overlap give 0),
    so that IoUs sitting near a threshold fall on the same side of it.
    """
    dt, gt = _table(dt, "dt", (1, 2), "(D, 4)"), _table(gt, "gt", (1, 2), "(G, 4)")
    dt, gt = dt.astype(np.float64).reshape(-1, 4), gt.astype(np.float64).reshape(-1, 4)
    dx, dy, dw, dh = (dt[:, i : i + 1] for i in range(4))
    gx, gy, gw, gh = (gt[None, :, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    union = dw * dh + gw * gh - inter
    overlap = (w > 0) & (h > 0)
    return np.divide(inter, union, out=np.zeros(inter.shape), where=overlap)


def _table(x, name, ndims, layout):
    """``x`` as a numeric array with one of ``ndims`` dimensions (the last of size 4 for boxes)."""
    try:
        a = np.asarray(x)
    except ValueError:
        raise TypeError(f"{name} must be a numeric array {layout}, got a ragged sequence") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array {layout}, got dtype {a.dtype}")
    if a.ndim not in ndims or (layout.endswith("4)") and a.size and a.shape[-1] != 4):
        raise ValueError(f"{name} must have shape {layout}, got {a.shape}")
    return a


def flatten_masks(masks) -> np.ndarray:
    """(K, H, W) → (K, H*W) bool (reshape(K, -1) cannot infer H*W when K = 0)."""
    masks = np.asarray(masks)
    return masks.reshape(masks.shape[0], int(np.prod(masks.shape[1:]))).astype(bool, copy=False)


def mask_iou(dt_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """IoU of binary masks ``dt (D, H, W)`` and ``gt (G, H, W)``; returns ``(D, G)`` float64.

    ``inter = A @ B.T`` on the masks flattened to ``(K, H*W)``; ``union = |a| + |b| - inter``.
    Masks that do not intersect (empty ones included) give 0, as in pycocotools' ``rleIou``.
    """
    dt_masks, gt_masks = (
        # (K, H, W), or flattened to (K, H·W) as the evaluator passes them.
        _table(dt_masks, "dt_masks", (2, 3), "(D, H, W)"),
        _table(gt_masks, "gt_masks", (2, 3), "(G, H, W)"),
    )
    if dt_masks.shape[1:] != gt_masks.shape[1:]:
        raise ValueError(
            f"mask_iou: dt_masks and gt_masks differ in size: {dt_masks.shape[1:]} and "
            f"{gt_masks.shape[1:]}"
        )
    a, b = flatten_masks(dt_masks), flatten_masks(gt_masks)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    inter = np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    for start in range(0, a.shape[1], _MASK_CHUNK):
        ca = a[:, start : start + _MASK_CHUNK].astype(np.float32)
        cb = b[:, start : start + _MASK_CHUNK].astype(np.float32)
        inter += ca @ cb.T
    area_a = np.count_nonzero(a, axis=1).astype(np.float64)
    area_b = np.count_nonzero(b, axis=1).astype(np.float64)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


# --------------------------------------------------------------------------------------------
# Per image: matching (pycocotools' evaluateImg for every area range at once)
# --------------------------------------------------------------------------------------------
def outside_area_ranges(area: np.ndarray) -> np.ndarray:
    """(N,) areas → (A, N) bool: outside each area range (bounds inclusive, as pycocotools)."""
    lo = np.array([r[1] for r in AREA_RANGES], dtype=np.float64)[:, None]
    hi = np.array([r[2] for r in AREA_RANGES], dtype=np.float64)[:, None]
    return (area[None, :] < lo) | (area[None, :] > hi)


def _last_best(candidate: np.ndarray, iou_row: np.ndarray) -> np.ndarray:
    """For each row of ``candidate (R, G)``, the last column of highest IoU among candidates; -1
    where none. "Last" because pycocotools' loop replaces its best on ``iou >= best``."""
    vals = np.where(candidate, iou_row[None, :], -1.0)
    last = vals.shape[1] - 1 - np.argmax(vals[:, ::-1], axis=1)
    return np.where(candidate.any(axis=1), last, -1)


def match_image(ious: np.ndarray, gt_ignore: np.ndarray, dt_outside: np.ndarray):
    """Greedy COCO matching of one image and category, all area ranges and thresholds at once.

    ``ious (D, G)`` with detections already in score order; ``gt_ignore (A, G)`` and
    ``dt_outside (A, D)`` say which ground truths / detections fall outside each area range.
    Returns ``matched (A, T, D)`` and ``ignored (A, T, D)`` bool, pycocotools' ``dtMatches > 0``
    and ``dtIgnore``.

    Rows ``r = a*T + t`` run side by side; the loop is over detections only, because each one
    must see which ground truths the higher-scored ones took.
    """
    A, G = gt_ignore.shape
    D = ious.shape[0]
    T = IOU_THRESHOLDS.size
    thr = np.tile(IOU_THRESHOLDS, A)[:, None]  # (A*T, 1)
    gt_ig = np.repeat(gt_ignore, T, axis=0)  # (A*T, G)
    taken = np.zeros((A * T, G), dtype=bool)
    match = np.full((A * T, D), -1, dtype=np.int64)
    for d in range(D if G else 0):
        row = ious[d]
        if row.max() < IOU_THRESHOLDS[0]:
            continue  # cannot match at any threshold
        free = (row[None, :] >= thr) & ~taken
        # Regular ground truths come first in pycocotools' order; ignored ones only when no
        # regular one matched (its loop breaks on reaching them).
        m = _last_best(free & ~gt_ig, row)
        m = np.where(m >= 0, m, _last_best(free & gt_ig, row))
        hit = np.flatnonzero(m >= 0)
        taken[hit, m[hit]] = True
        match[:, d] = m
    matched = match >= 0
    on_ignored = np.take_along_axis(gt_ig, np.maximum(match, 0), axis=1) if G else matched
    dt_out = np.repeat(dt_outside, T, axis=0)
    ignored = (matched & on_ignored) | (~matched & dt_out)
    return matched.reshape(A, T, D), ignored.reshape(A, T, D)


# --------------------------------------------------------------------------------------------
# Accumulate and summarize (pycocotools' accumulate + summarize)
# --------------------------------------------------------------------------------------------
def accumulate_records(records: list[dict], categories: list[int]):
    """records: per image (in image-id order) {category: (scores, matched, ignored, n_gt)}.

    Returns ``precision (T, R, K, A, M)`` and ``recall (T, K, A, M)``, -1 where undefined.
    """
    T, R, K, A, M = (
        IOU_THRESHOLDS.size,
        RECALL_POINTS.size,
        len(categories),
        len(AREA_RANGES),
        len(MAX_DETS),
    )
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k, cat in enumerate(categories):
        entries = [rec[cat] for rec in records if cat in rec]
        if not entries:
            continue
        for a in range(A):
            n_gt = sum(int(e[3][a]) for e in entries)
            if n_gt == 0:
                continue
            for mi, max_det in enumerate(MAX_DETS):
                scores = np.concatenate([e[0][:max_det] for e in entries])
                order = np.argsort(-scores, kind="mergesort")  # stable, as pycocotools
                matched = np.concatenate([e[1][a, :, :max_det] for e in entries], axis=1)[:, order]
                ignored = np.concatenate([e[2][a, :, :max_det] for e in entries], axis=1)[:, order]
                tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
                fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
                nd = tp.shape[1]
                rc = tp / n_gt
                pr = tp / (fp + tp + np.spacing(1))
                recall[:, k, a, mi] = rc[:, -1] if nd else 0
                # Monotone precision: running max from the end (pycocotools' backward loop).
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(T):
                    idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
                    q = np.zeros(R)
                    ok = idx < nd
                    q[ok] = pr[t, idx[ok]]
                    precision[t, :, k, a, mi] = q
    return precision, recall


def mean_defined(s: np.ndarray) -> float:
    defined = s[s > -1]
    return -1.0 if defined.size == 0 else float(np.mean(defined))


def summarize_arrays(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The 12 numbers of pycocotools' ``stats``, keyed by ``STAT_NAMES``; -1.0 where undefined."""
    area = {name: i for i, (name, _, _) in enumerate(AREA_RANGES)}
    top = MAX_DETS.index(100)

    def ap(iou=None, rng="all"):
        s = precision if iou is None else precision[np.flatnonzero(IOU_THRESHOLDS == iou)]
        return mean_defined(s[:, :, :, area[rng], top])

    def ar(max_det=100, rng="all"):
        return mean_defined(recall[:, :, area[rng], MAX_DETS.index(max_det)])

    values = (
        ap(),
        ap(0.5),
        ap(0.75),
        ap(rng="small"),
        ap(rng="medium"),
        ap(rng="large"),
        ar(1),
        ar(10),
        ar(100),
        ar(rng="small"),
        ar(rng="medium"),
        ar(rng="large"),
    )
    return dict(zip(STAT_NAMES, values, strict=True))
