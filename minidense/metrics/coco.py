"""COCO-style box and mask average precision, computed exactly as pycocotools computes it.

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

Example::

    ev = COCOEvaluator(iou_type=("bbox", "segm"))
    for image_id, (pred, target) in enumerate(zip(preds, targets)):
        ev.add(image_id, pred, target)
    results = ev.summarize()        # {"bbox": {"AP": .., "AP50": .., ...}, "segm": {...}}
    print(format_table(results))
"""

from __future__ import annotations

import numbers

import numpy as np

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
IOU_TYPES = ("bbox", "segm")

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


def _flatten(masks) -> np.ndarray:
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
    a, b = _flatten(dt_masks), _flatten(gt_masks)
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
# Input checks
# --------------------------------------------------------------------------------------------
def _as_numpy(x):
    """np.ndarray from an array, a minidense/torch tensor (``.numpy()``) or a numba device array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    return np.asarray(x)


def _where(field: str, image_id) -> str:
    return f"{field} of image {image_id!r}"


def _get(d: dict, key: str, side: str, image_id, required: bool):
    if key not in d or d[key] is None:
        if required:
            raise ValueError(f"{side}[{key!r}] of image {image_id!r} is required but missing")
        return None
    return _as_numpy(d[key])


def _check_boxes(boxes: np.ndarray, field: str, image_id) -> np.ndarray:
    """(N, 4) xyxy → (N, 4) xywh float64, the form pycocotools reads."""
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{_where(field, image_id)}: expected shape (N, 4), got {boxes.shape}")
    if not (np.issubdtype(boxes.dtype, np.floating) or np.issubdtype(boxes.dtype, np.integer)):
        raise ValueError(f"{_where(field, image_id)}: expected real numbers, got {boxes.dtype}")
    boxes = boxes.astype(np.float64)
    if not np.isfinite(boxes).all():
        raise ValueError(f"{_where(field, image_id)}: contains NaN or inf")
    wh = boxes[:, 2:] - boxes[:, :2]
    bad = np.flatnonzero((wh < 0).any(axis=1))
    if bad.size:
        raise ValueError(
            f"{_where(field, image_id)}: boxes must be (x1, y1, x2, y2) with x2 >= x1 and "
            f"y2 >= y1; box {int(bad[0])} is {boxes[bad[0]].tolist()} (convert (x, y, w, h) "
            "boxes with x2 = x + w, y2 = y + h)"
        )
    return np.concatenate([boxes[:, :2], wh], axis=1)


def _check_vector(v: np.ndarray, n: int | None, field: str, image_id) -> np.ndarray:
    if v.size == 0:
        v = v.reshape(0)
    if v.ndim != 1:
        raise ValueError(f"{_where(field, image_id)}: expected shape (N,), got {v.shape}")
    if n is not None and v.shape[0] != n:
        raise ValueError(f"{_where(field, image_id)}: expected {n} entries, got {v.shape[0]}")
    return v


def _check_labels(labels, n, field, image_id, num_classes) -> np.ndarray:
    labels = _check_vector(labels, n, field, image_id)
    if labels.size == 0:
        return labels.astype(np.int64)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{_where(field, image_id)}: expected integer labels, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
        hi = "" if num_classes is None else f" and < num_classes={num_classes}"
        raise ValueError(
            f"{_where(field, image_id)}: labels must be >= 0{hi}, got "
            f"{labels.min()}..{labels.max()}"
        )
    return labels


def _check_scores(scores, n, image_id) -> np.ndarray:
    scores = _check_vector(scores, n, "pred['scores']", image_id)
    if scores.dtype == bool or not (
        np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)
    ):
        raise ValueError(
            f"pred['scores'] of image {image_id!r}: expected reals, got {scores.dtype}"
        )
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"pred['scores'] of image {image_id!r}: contains NaN or inf")
    return scores


def _check_masks(masks, n, field, image_id) -> np.ndarray:
    """(N, H, W) bool, or 0/1 of any real dtype → (N, H, W) bool; None for an empty (0,) array."""
    if n == 0 and masks.size == 0 and masks.ndim != 3:
        return None  # no objects: an empty list of masks carries no size
    if masks.ndim != 3:
        raise ValueError(f"{_where(field, image_id)}: expected shape (N, H, W), got {masks.shape}")
    if masks.shape[0] != n:
        raise ValueError(f"{_where(field, image_id)}: expected {n} masks, got {masks.shape[0]}")
    if masks.dtype == bool:
        return masks
    if not (np.issubdtype(masks.dtype, np.integer) or np.issubdtype(masks.dtype, np.floating)):
        raise ValueError(f"{_where(field, image_id)}: expected bool or 0/1, got {masks.dtype}")
    binary = masks != 0
    if not np.array_equal(masks, binary):
        raise ValueError(
            f"{_where(field, image_id)}: masks must be binary (bool or 0/1); threshold soft "
            "masks first (e.g. masks > 0.5)"
        )
    return binary


def _normalise_iou_type(iou_type) -> tuple[str, ...]:
    ok = isinstance(iou_type, str) or (
        isinstance(iou_type, tuple | list) and all(isinstance(t, str) for t in iou_type)
    )
    types = ((iou_type,) if isinstance(iou_type, str) else tuple(iou_type)) if ok else ()
    if not types or any(t not in IOU_TYPES for t in types) or len(set(types)) != len(types):
        raise ValueError(f"iou_type: expected 'bbox', 'segm' or ('bbox', 'segm'), got {iou_type!r}")
    return types


def _parse_image(image_id, pred, target, image_size, iou_types, num_classes):
    """Validate one image's dicts; returns labels, scores, xywh boxes, masks of pred then target.

    Boxes come back as ``(x, y, w, h)`` float64, masks as bool or None.
    """
    segm = "segm" in iou_types
    bbox = "bbox" in iou_types
    for side, d in (("pred", pred), ("target", target)):
        if not isinstance(d, dict):
            raise TypeError(f"{side} of image {image_id}: expected a dict, got {type(d).__name__}")

    scores = _check_scores(_get(pred, "scores", "pred", image_id, True), None, image_id)
    D = scores.shape[0]
    labels = _get(pred, "labels", "pred", image_id, True)
    labels = _check_labels(labels, D, "pred['labels']", image_id, num_classes)
    gt_labels = _get(target, "labels", "target", image_id, True)
    gt_labels = _check_labels(gt_labels, None, "target['labels']", image_id, num_classes)
    G = gt_labels.shape[0]
    if "iscrowd" in target and np.any(_as_numpy(target["iscrowd"])):
        raise ValueError(f"target['iscrowd'] of image {image_id}: crowds are not supported")

    boxes = _get(pred, "boxes", "pred", image_id, bbox and D > 0)
    gt_boxes = _get(target, "boxes", "target", image_id, bbox and G > 0)
    boxes = np.zeros((D, 4)) if boxes is None else _check_boxes(boxes, "pred['boxes']", image_id)
    gt_boxes = (
        np.zeros((G, 4))
        if gt_boxes is None
        else _check_boxes(gt_boxes, "target['boxes']", image_id)
    )
    if boxes.shape[0] != D:
        raise ValueError(
            f"pred['boxes'] of image {image_id}: expected {D} boxes (one per "
            f"score), got {boxes.shape[0]}"
        )
    if gt_boxes.shape[0] != G:
        raise ValueError(
            f"target['boxes'] of image {image_id}: expected {G} boxes (one per "
            f"label), got {gt_boxes.shape[0]}"
        )

    masks = _get(pred, "masks", "pred", image_id, segm and D > 0)
    gt_masks = _get(target, "masks", "target", image_id, segm and G > 0)
    sizes = {}
    if masks is not None:
        masks = _check_masks(masks, D, "pred['masks']", image_id)
    if gt_masks is not None:
        gt_masks = _check_masks(gt_masks, G, "target['masks']", image_id)
    for name, m in (("pred['masks']", masks), ("target['masks']", gt_masks)):
        if m is not None:
            sizes[name] = m.shape[1:]
    if image_size is not None:
        sizes["image_size"] = tuple(int(s) for s in image_size)
    if len(set(sizes.values())) > 1:
        raise ValueError(f"masks of image {image_id}: sizes disagree: {sizes}")
    return labels, scores, boxes, masks, gt_labels, gt_boxes, gt_masks


# --------------------------------------------------------------------------------------------
# Per image: matching (pycocotools' evaluateImg for every area range at once)
# --------------------------------------------------------------------------------------------
def _outside(area: np.ndarray) -> np.ndarray:
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
def _accumulate(records: list[dict], categories: list[int]):
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


def _mean_defined(s: np.ndarray) -> float:
    defined = s[s > -1]
    return -1.0 if defined.size == 0 else float(np.mean(defined))


def summarize_arrays(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """The 12 numbers of pycocotools' ``stats``, keyed by ``STAT_NAMES``; -1.0 where undefined."""
    area = {name: i for i, (name, _, _) in enumerate(AREA_RANGES)}
    top = MAX_DETS.index(100)

    def ap(iou=None, rng="all"):
        s = precision if iou is None else precision[np.flatnonzero(IOU_THRESHOLDS == iou)]
        return _mean_defined(s[:, :, :, area[rng], top])

    def ar(max_det=100, rng="all"):
        return _mean_defined(recall[:, :, area[rng], MAX_DETS.index(max_det)])

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


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
class COCOEvaluator:
    """Accumulates per-image predictions and targets; ``summarize()`` gives COCO box / mask AP.

    Args:
        num_classes: if given, labels must lie in ``[0, num_classes)`` and categories are
            ``0..num_classes-1``; if None, the categories are the labels seen. (Either way a
            category without ground truth is -1 and left out of the means, so both give the same
            numbers.)
        iou_type: ``"bbox"``, ``"segm"`` or ``("bbox", "segm")``.

    Each image is matched when it is added; only the compact match tables are kept, not masks.
    """

    def __init__(self, num_classes: int | None = None, iou_type="bbox"):
        if num_classes is not None and (
            not isinstance(num_classes, numbers.Integral)
            or isinstance(num_classes, bool)
            or num_classes < 1
        ):
            raise ValueError(f"num_classes: expected a positive int or None, got {num_classes!r}")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.iou_types = _normalise_iou_type(iou_type)
        self.reset()

    def reset(self) -> None:
        self._records = {t: {} for t in self.iou_types}  # iou_type -> image_id -> {cat: record}
        self._labels_seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._records[self.iou_types[0]])

    def __repr__(self) -> str:
        return (
            f"COCOEvaluator(num_classes={self.num_classes}, iou_type={self.iou_types}, "
            f"images={len(self)})"
        )

    def add(self, image_id: int, pred: dict, target: dict, image_size=None) -> None:
        """Match one image's detections to its ground truth.

        Args:
            image_id: an int, unique over the evaluation (ties in score across images are
                broken by image id, then by the order within the image, as in pycocotools).
            pred: ``boxes (D, 4)`` xyxy, ``scores (D,)``, ``labels (D,)`` int, and ``masks
                (D, H, W)`` bool or 0/1 (required for ``"segm"``). ``boxes`` may be left out when
                only ``"segm"`` is evaluated.
            target: ``boxes (G, 4)`` xyxy, ``labels (G,)``, ``masks (G, H, W)`` (required for
                ``"segm"``; when given, ground-truth areas are mask pixel counts).
            image_size: optional ``(H, W)``; masks must then be that size.
        """
        if isinstance(image_id, bool) or not isinstance(image_id, numbers.Integral):
            raise ValueError(f"image_id: expected an int, got {image_id!r}")
        image_id = int(image_id)
        if image_id in self._records[self.iou_types[0]]:
            raise ValueError(f"image_id {image_id} was already added")
        labels, scores, boxes, masks, gt_labels, gt_boxes, gt_masks = _parse_image(
            image_id, pred, target, image_size, self.iou_types, self.num_classes
        )
        box_area = boxes[:, 2] * boxes[:, 3]  # w*h, as COCO.loadRes stores for box results
        # COCO's gt 'area' is the mask area when there is a mask, for box AP too.
        gt_area = (
            gt_boxes[:, 2] * gt_boxes[:, 3]
            if gt_masks is None
            else np.count_nonzero(_flatten(gt_masks), axis=1).astype(np.float64)
        )
        if "segm" in self.iou_types:
            flat = _flatten(masks) if masks is not None else np.zeros((0, 0), bool)
            gt_flat = _flatten(gt_masks) if gt_masks is not None else np.zeros((0, 0), bool)
            mask_area = np.count_nonzero(flat, axis=1).astype(np.float64)

        self._labels_seen.update(labels.tolist())
        self._labels_seen.update(gt_labels.tolist())
        gt_outside = _outside(gt_area)
        for t in self.iou_types:
            self._records[t][image_id] = {}
        for cat in np.union1d(labels, gt_labels).tolist():
            di = np.flatnonzero(labels == cat)
            # Stable sort by score, then the per-(image, category) cut to 100 (evaluateImg).
            di = di[np.argsort(-scores[di], kind="mergesort")][: MAX_DETS[-1]]
            gi = np.flatnonzero(gt_labels == cat)
            for t in self.iou_types:
                if t == "bbox":
                    ious = box_iou_xywh(boxes[di], gt_boxes[gi])
                    dt_area = box_area[di]
                else:
                    ious = mask_iou(flat[di], gt_flat[gi])
                    dt_area = mask_area[di]
                matched, ignored = match_image(ious, gt_outside[:, gi], _outside(dt_area))
                n_gt = np.count_nonzero(~gt_outside[:, gi], axis=1)
                self._records[t][image_id][cat] = (scores[di], matched, ignored, n_gt)

    def categories(self) -> list[int]:
        if self.num_classes is not None:
            return list(range(self.num_classes))
        return sorted(self._labels_seen)

    def accumulate(self) -> dict[str, dict]:
        """Per iou_type: ``precision (T, R, K, A, M)``, ``recall (T, K, A, M)`` (pycocotools'
        ``eval['precision']`` / ``eval['recall']``; -1 where undefined) and ``categories (K,)``."""
        cats = self.categories()
        out = {}
        for t in self.iou_types:
            recs = [self._records[t][i] for i in sorted(self._records[t])]
            precision, recall = _accumulate(recs, cats)
            out[t] = {"precision": precision, "recall": recall, "categories": cats}
        return out

    def summarize(self) -> dict[str, dict[str, float]]:
        """``{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100",
        "ARs", "ARm", "ARl"}}``, fractions in [0, 1], -1.0 where undefined (no ground truth)."""
        return {
            t: summarize_arrays(a["precision"], a["recall"]) for t, a in self.accumulate().items()
        }

    def per_class_ap(self) -> dict[str, dict[int, float]]:
        """``{iou_type: {category: AP}}`` (AP@[.5:.95], all areas); -1.0 if no ground truth."""
        out = {}
        for t, acc in self.accumulate().items():
            p = acc["precision"][:, :, :, 0, MAX_DETS.index(100)]
            out[t] = {c: _mean_defined(p[:, :, k]) for k, c in enumerate(acc["categories"])}
        return out


def coco_ap(preds, targets, iou_type="bbox", num_classes=None, image_ids=None):
    """Functional form: ``preds`` and ``targets`` are lists of per-image dicts (see
    ``COCOEvaluator.add``); images get ids ``0..N-1`` unless ``image_ids`` is given.

    Returns ``summarize()``'s dict for a single iou_type string, else the dict keyed by type.
    """
    for name, v in (("preds", preds), ("targets", targets), ("image_ids", image_ids)):
        if (v is not None or name != "image_ids") and not isinstance(
            v, list | tuple | range | np.ndarray
        ):
            raise TypeError(f"coco_ap: {name} must be a list, got {type(v).__name__}")
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets: expected equal lengths, got {len(preds)} and {len(targets)}"
        )
    ids = range(len(preds)) if image_ids is None else list(image_ids)
    if len(ids) != len(preds):
        raise ValueError(f"image_ids: expected {len(preds)} ids, got {len(ids)}")
    ev = COCOEvaluator(num_classes=num_classes, iou_type=iou_type)
    for i, p, t in zip(ids, preds, targets, strict=True):
        ev.add(i, p, t)
    results = ev.summarize()
    return results[iou_type] if isinstance(iou_type, str) else results


def format_table(results: dict) -> str:
    """A paper-style table in percent: one row per iou_type, ``-`` where undefined (-1).

    Accepts ``summarize()``'s dict, or one iou_type's stat dict.
    """
    if not isinstance(results, dict) or not all(
        isinstance(v, dict | numbers.Real) for v in results.values()
    ):
        raise TypeError(
            f"format_table: results must be summarize()'s dict (of stat dicts), got {results!r}"
        )
    if results and all(isinstance(v, numbers.Real) for v in results.values()):
        results = {"": results}
    cols = [n for n in STAT_NAMES if any(n in r for r in results.values())]
    width = max([4] + [len(str(k)) for k in results])
    lines = [" ".join([f"{'':<{width}}"] + [f"{c:>6}" for c in cols])]
    for name, stats in results.items():
        cells = []
        for c in cols:
            v = stats.get(c, -1.0)
            cells.append(f"{'-':>6}" if v == -1 else f"{100 * v:>6.1f}")
        lines.append(" ".join([f"{name:<{width}}"] + cells))
    return "\n".join(lines)
