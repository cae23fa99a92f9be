"""COCO-style box and mask average precision, as pycocotools computes it (the tests hold it to
pycocotools, all 12 summary numbers, to 1e-12): ``COCOEvaluator``, ``coco_ap`` and
``format_table``. How the numbers are computed, step by step as pycocotools does, is in
``coco_matching.py``; the checks of the inputs in ``coco_inputs.py``.

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

from .coco_inputs import IOU_TYPES, normalise_iou_type, parse_image
from .coco_matching import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_POINTS,
    STAT_NAMES,
    accumulate_records,
    box_iou_xywh,
    flatten_masks,
    mask_iou,
    match_image,
    mean_defined,
    outside_area_ranges,
    summarize_arrays,
)

__all__ = [
    "COCOEvaluator", "coco_ap", "format_table", "box_iou_xywh", "mask_iou", "summarize_arrays",
    "STAT_NAMES", "IOU_THRESHOLDS", "RECALL_POINTS", "MAX_DETS", "AREA_RANGES", "IOU_TYPES",
]  # fmt: skip


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
        self.iou_types = normalise_iou_type(iou_type)
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
        labels, scores, boxes, masks, gt_labels, gt_boxes, gt_masks = parse_image(
            image_id, pred, target, image_size, self.iou_types, self.num_classes
        )
        box_area = boxes[:, 2] * boxes[:, 3]  # w*h, as COCO.loadRes stores for box results
        # COCO's gt 'area' is the mask area when there is a mask, for box AP too.
        gt_area = (
            gt_boxes[:, 2] * gt_boxes[:, 3]
            if gt_masks is None
            else np.count_nonzero(flatten_masks(gt_masks), axis=1).astype(np.float64)
        )
        if "segm" in self.iou_types:
            flat = flatten_masks(masks) if masks is not None else np.zeros((0, 0), bool)
            gt_flat = flatten_masks(gt_masks) if gt_masks is not None else np.zeros((0, 0), bool)
            mask_area = np.count_nonzero(flat, axis=1).astype(np.float64)

        self._labels_seen.update(labels.tolist())
        self._labels_seen.update(gt_labels.tolist())
        gt_outside = outside_area_ranges(gt_area)
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
                matched, ignored = match_image(
                    ious, gt_outside[:, gi], outside_area_ranges(dt_area)
                )
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
            precision, recall = accumulate_records(recs, cats)
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
            out[t] = {c: mean_defined(p[:, :, k]) for k, c in enumerate(acc["categories"])}
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
