"""COCO keypoint AP from the object keypoint similarity (OKS), as pycocotools computes it.

We reproduce ``COCOeval(..., iouType="keypoints")`` with its default parameters (the tests use
pycocotools as the oracle, all 10 summary numbers to 1e-12). Matching, accumulation and the
101-point precision are those of box and mask AP (:mod:`minidense.metrics.coco`); what differs:

* **OKS instead of IoU.** For a detection d and a ground truth g with keypoints ``(x, y, v)``:

  ``OKS = Σ_i exp(−e_i) / n`` over g's labelled keypoints (v > 0, n of them), with
  ``e_i = (dx_i² + dy_i²) / (2σ_i)² / (area + ε) / 2``,

  where ``area`` is g's area (the mask's pixel count when the target has masks, as COCO's
  segmentation area; else the box's w·h) and σ_i the keypoint's sigma. A ground truth with no
  labelled keypoint is ignored; its OKS (which a detection may still match, and then be ignored
  too) measures each predicted keypoint's distance to the outside of a box twice as wide and high
  as g's, over all K keypoints — operation for operation pycocotools' ``computeOks``.
* **Up to 20 detections** per image and category (``maxDets = [20]``), **area ranges** all,
  medium and large only (no small: COCO does not label keypoints of small people).
  A detection's area (for the ranges) is that of the box around its keypoints, as ``loadRes``.
* **The 10 numbers**: AP, AP50, AP75, APm, APl and AR, AR50, AR75, ARm, ARl.

**Sigmas.** COCO's 17 per-keypoint sigmas measure how far human annotators disagree about a
body joint (eyes 0.025 … hips 0.107). The keypoints of the procedural shapes are exact points:
corners, and the extreme points of circles; one tolerance suits them all, so
``SHAPE_SIGMAS = (0.05, 0.05, 0.05, 0.05)``, between COCO's eyes and its shoulders (0.079). On an
object of area s² it makes a keypoint's OKS 0.5 at an error of 0.118·s (3.5 px for a 30×30 px
object) and 0.95 at 0.032·s (1 px): AP75 asks for about 2.3 px, the strictest threshold for one.

Crowd annotations are not supported (a target with ``iscrowd`` set is refused).
"""

from __future__ import annotations

import numbers

import numpy as np

from .coco import COCOEvaluator
from .coco_inputs import parse_image
from .coco_matching import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    accumulate_records,
    flatten_masks,
    match_image,
    mean_defined,
    outside_area_ranges,
)
from .host import host_array

SHAPE_SIGMAS = np.array([0.05, 0.05, 0.05, 0.05])
MAX_KEYPOINT_DETS = 20
KEYPOINT_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_AREA = {name: i for i, (name, _, _) in enumerate(AREA_RANGES)}


def _reals(x, name, ndim, shape):
    """``x`` as a finite float64 array of ``ndim`` dimensions, or an error naming it."""
    try:
        a = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    except ValueError:
        a = np.asarray(None)
    if a.dtype.kind not in "biuf" or a.ndim != ndim or not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite numbers of shape {shape}, got {x!r:.80}")
    return a.astype(np.float64)


def _check_sigmas(sigmas):
    s = _reals(sigmas, "sigmas", 1, "(K,)") if not isinstance(sigmas, str) else None
    if s is None or s.size == 0 or not (s > 0).all():
        raise ValueError(f"sigmas must be (K,) positive numbers, got {sigmas!r:.80}")
    return s


def oks(dt, gt, gt_area, gt_boxes, sigmas) -> np.ndarray:
    """Object keypoint similarity of detections ``dt (D, K, 2 or 3)`` and ground truths
    ``gt (G, K, 3)`` (rows ``(x, y, v)``) → ``(D, G)`` float64.

    ``gt_area (G,)`` and ``gt_boxes (G, 4)`` in ``(x, y, w, h)`` as COCO stores them; ``sigmas
    (K,)``. pycocotools' ``computeOks``, operation for operation (see the module docstring)."""
    sigmas = _check_sigmas(sigmas)
    K = len(sigmas)
    dt, gt = _reals(dt, "dt", 3, "(D, K, 2 or 3)"), _reals(gt, "gt", 3, "(G, K, 3)")
    gt_area, gt_boxes = (
        _reals(gt_area, "gt_area", 1, "(G,)"),
        _reals(gt_boxes, "gt_boxes", 2, "(G, 4)"),
    )
    G = len(gt)
    if dt.shape[1:2] != (K,) or dt.shape[2] not in (2, 3) or gt.shape[1:] != (K, 3):
        raise ValueError(
            f"dt (D, K, 2 or 3) and gt (G, K, 3) must have K = {K} keypoints (one per sigma), got "
            f"dt {dt.shape} and gt {gt.shape}"
        )
    if gt_area.shape != (G,) or gt_boxes.shape != (G, 4):
        raise ValueError(
            f"gt_area ({G},) and gt_boxes ({G}, 4) must match gt, got {gt_area.shape} and "
            f"{gt_boxes.shape}"
        )
    out = np.zeros((len(dt), len(gt)))
    if len(dt) == 0 or len(gt) == 0:
        return out
    variances = (sigmas * 2) ** 2
    xd, yd = dt[:, :, 0], dt[:, :, 1]
    for j, (g, area, (bx, by, bw, bh)) in enumerate(zip(gt, gt_area, gt_boxes, strict=True)):
        labelled = g[:, 2] > 0
        if labelled.any():
            dx, dy = xd - g[:, 0], yd - g[:, 1]
        else:  # distance to the outside of the box doubled about its centre
            x0, x1, y0, y1 = bx - bw, bx + bw * 2, by - bh, by + bh * 2
            dx = np.maximum(0, x0 - xd) + np.maximum(0, xd - x1)
            dy = np.maximum(0, y0 - yd) + np.maximum(0, yd - y1)
        e = (dx**2 + dy**2) / variances / (area + np.spacing(1)) / 2
        if labelled.any():
            e = e[:, labelled]
        out[:, j] = np.sum(np.exp(-e), axis=1) / e.shape[1]
    return out


def _keypoints(value, n, K, field, image_id, with_flags) -> np.ndarray:
    """``value`` as ``(n, K, 3)`` float64 (a missing visibility column reads 2, 'visible')."""
    kp = host_array(value)
    if kp.size == 0 and n == 0:
        return np.zeros((0, K, 3))
    if kp.dtype.kind not in "biuf" or kp.ndim != 3 or kp.shape[:2] != (n, K):
        raise ValueError(
            f"{field} of image {image_id}: expected ({n}, {K}, 3) rows (x, y, v) (K from the "
            f"sigmas), got shape {kp.shape} dtype {kp.dtype}"
        )
    if kp.shape[2] not in ((3,) if with_flags else (2, 3)):
        raise ValueError(
            f"{field} of image {image_id}: expected rows of {'3' if with_flags else '2 or 3'}, "
            f"got {kp.shape[2]}"
        )
    kp = kp.astype(np.float64)
    if not np.isfinite(kp).all():
        raise ValueError(f"{field} of image {image_id}: contains NaN or inf")
    if kp.shape[2] == 2:
        kp = np.concatenate([kp, np.full((n, K, 1), 2.0)], axis=2)
    return kp


class KeypointEvaluator:
    """Accumulates per-image keypoint predictions and targets; ``summarize()`` gives COCO's
    keypoint AP (see the module docstring).

    Args:
        num_classes: as :class:`~minidense.metrics.coco.COCOEvaluator`: labels in
            ``[0, num_classes)``, or None for the categories seen.
        sigmas: the per-keypoint OKS sigmas ``(K,)``; ``SHAPE_SIGMAS`` for the shapes' four.
    """

    def __init__(self, num_classes: int | None = None, sigmas=SHAPE_SIGMAS):
        self.num_classes = COCOEvaluator(num_classes).num_classes  # checked as box AP checks it
        self.sigmas = _check_sigmas(sigmas)
        self.reset()

    def reset(self) -> None:
        self._records: dict[int, dict] = {}
        self._labels_seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return (
            f"KeypointEvaluator(num_classes={self.num_classes}, keypoints={len(self.sigmas)}, "
            f"images={len(self)})"
        )

    def add(self, image_id: int, pred: dict, target: dict) -> None:
        """Match one image's detections to its ground truth.

        Args:
            image_id: an int, unique over the evaluation.
            pred: ``keypoints (D, K, 2 or 3)`` (a third column, a per-keypoint score, is not
                used), ``scores (D,)``, ``labels (D,)``.
            target: ``keypoints (G, K, 3)`` rows ``(x, y, v)``, ``labels (G,)``, ``boxes (G, 4)``
                ``(x1, y1, x2, y2)`` and optionally ``masks (G, H, W)`` (then the area is the
                mask's pixel count, else the box's).
        """
        if isinstance(image_id, bool) or not isinstance(image_id, numbers.Integral):
            raise ValueError(f"image_id: expected an int, got {image_id!r}")
        image_id = int(image_id)
        if image_id in self._records:
            raise ValueError(f"image_id {image_id} was already added")
        labels, scores, _, _, gt_labels, gt_boxes, gt_masks = parse_image(
            image_id, pred, target, None, (), self.num_classes
        )
        D, G, K = len(scores), len(gt_labels), len(self.sigmas)
        if G and target.get("boxes") is None:
            raise ValueError(f"target['boxes'] of image {image_id} is required but missing")
        for side, d, n in (("pred", pred, D), ("target", target, G)):
            if n and d.get("keypoints") is None:
                raise ValueError(f"{side}['keypoints'] of image {image_id} is required but missing")
        kp = _keypoints(pred.get("keypoints", ()), D, K, "pred['keypoints']", image_id, False)
        gt_kp = _keypoints(target.get("keypoints", ()), G, K, "target['keypoints']", image_id, True)
        gt_area = (
            gt_boxes[:, 2] * gt_boxes[:, 3]
            if gt_masks is None
            else np.count_nonzero(flatten_masks(gt_masks), axis=1).astype(np.float64)
        )
        # loadRes: a detection's area is that of the box around all its keypoints.
        extent = kp[:, :, :2].max(axis=1) - kp[:, :, :2].min(axis=1) if D else np.zeros((0, 2))
        dt_area = extent[:, 0] * extent[:, 1]
        # A ground truth without a labelled keypoint is ignored (pycocotools' num_keypoints == 0).
        unlabelled = ~(gt_kp[:, :, 2] > 0).any(axis=1)

        self._labels_seen.update(labels.tolist())
        self._labels_seen.update(gt_labels.tolist())
        record = {}
        for cat in np.union1d(labels, gt_labels).tolist():
            di = np.flatnonzero(labels == cat)
            di = di[np.argsort(-scores[di], kind="mergesort")][:MAX_KEYPOINT_DETS]
            gi = np.flatnonzero(gt_labels == cat)
            ious = oks(kp[di], gt_kp[gi], gt_area[gi], gt_boxes[gi], self.sigmas)
            gt_ignore = outside_area_ranges(gt_area[gi]) | unlabelled[gi][None, :]
            matched, ignored = match_image(ious, gt_ignore, outside_area_ranges(dt_area[di]))
            record[cat] = (scores[di], matched, ignored, np.count_nonzero(~gt_ignore, axis=1))
        self._records[image_id] = record

    def categories(self) -> list[int]:
        if self.num_classes is not None:
            return list(range(self.num_classes))
        return sorted(self._labels_seen)

    def accumulate(self) -> dict:
        """``precision (T, R, K, A, M)``, ``recall (T, K, A, M)`` over the box/mask evaluator's
        four area ranges and max-detection counts (1, 10, 100; every image and category holds
        at most 20 detections, so the column of 100 is pycocotools' ``maxDets=[20]``), -1
        where undefined, and ``categories``."""
        cats = self.categories()
        precision, recall = accumulate_records(
            [self._records[i] for i in sorted(self._records)], cats
        )
        return {"precision": precision, "recall": recall, "categories": cats}

    def summarize(self) -> dict[str, float]:
        """``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}``,
        fractions in [0, 1], -1.0 where undefined (no ground truth in that slice)."""
        acc = self.accumulate()
        m = MAX_DETS.index(100)
        p, r = acc["precision"][..., m], acc["recall"][..., m]

        def thr(iou):
            return slice(None) if iou is None else np.flatnonzero(IOU_THRESHOLDS == iou)

        stats = {}
        for kind, table in (("AP", p), ("AR", r)):
            for suffix, iou, area in (("", None, "all"), ("50", 0.5, "all"), ("75", 0.75, "all"),
                                      ("m", None, "medium"), ("l", None, "large")):  # fmt: skip
                stats[kind + suffix] = mean_defined(table[thr(iou)][..., _AREA[area]])
        return {name: stats[name] for name in KEYPOINT_STAT_NAMES}


def keypoint_ap(preds, targets, sigmas=SHAPE_SIGMAS, num_classes=None):
    """Functional form: lists of per-image ``preds`` and ``targets`` (see
    :meth:`KeypointEvaluator.add`), images numbered in order → ``summarize()``'s dict."""
    for name, v in (("preds", preds), ("targets", targets)):
        if not isinstance(v, list | tuple):
            raise TypeError(f"keypoint_ap: {name} must be a list, got {type(v).__name__}")
    if len(preds) != len(targets):
        raise ValueError(
            f"preds and targets: expected equal lengths, got {len(preds)} and {len(targets)}"
        )
    ev = KeypointEvaluator(num_classes=num_classes, sigmas=sigmas)
    for i, (p, t) in enumerate(zip(preds, targets, strict=True)):
        ev.add(i, p, t)
    return ev.summarize()


def format_keypoint_table(stats: dict) -> str:
    """A row "keypoints" in percent under the 10 stat names, ``-`` where undefined (-1)."""
    if not isinstance(stats, dict) or not all(
        isinstance(stats.get(n), int | float) for n in KEYPOINT_STAT_NAMES
    ):
        raise TypeError(
            f"format_keypoint_table: stats must be summarize()'s dict, got {stats!r:.80}"
        )
    head = " ".join([" " * 9] + [f"{n:>6}" for n in KEYPOINT_STAT_NAMES])
    cells = ["-" if stats[n] == -1 else f"{100 * stats[n]:.1f}" for n in KEYPOINT_STAT_NAMES]
    return head + "\n" + " ".join(["keypoints"] + [f"{c:>6}" for c in cells])
