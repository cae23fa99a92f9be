"""The COCO evaluator's input checks: one image's ``pred`` and ``target`` dicts, checked
field by field (a wrong one is named with its image id) and converted to the form pycocotools
reads: ``(x, y, w, h)`` float64 boxes, int64 labels, float64 scores, bool masks."""

from __future__ import annotations

import numpy as np

from .host import host_array

__all__ = ["IOU_TYPES", "normalise_iou_type", "parse_image"]

IOU_TYPES = ("bbox", "segm")


def _where(field: str, image_id) -> str:
    return f"{field} of image {image_id!r}"


def _get(d: dict, key: str, side: str, image_id, required: bool):
    if key not in d or d[key] is None:
        if required:
            raise ValueError(f"{side}[{key!r}] of image {image_id!r} is required but missing")
        return None
    return host_array(d[key])


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


def normalise_iou_type(iou_type) -> tuple[str, ...]:
    ok = isinstance(iou_type, str) or (
        isinstance(iou_type, tuple | list) and all(isinstance(t, str) for t in iou_type)
    )
    types = ((iou_type,) if isinstance(iou_type, str) else tuple(iou_type)) if ok else ()
    if not types or any(t not in IOU_TYPES for t in types) or len(set(types)) != len(types):
        raise ValueError(f"iou_type: expected 'bbox', 'segm' or ('bbox', 'segm'), got {iou_type!r}")
    return types


def parse_image(image_id, pred, target, image_size, iou_types, num_classes):
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
    if "iscrowd" in target and np.any(host_array(target["iscrowd"])):
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
