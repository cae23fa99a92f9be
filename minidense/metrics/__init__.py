"""Evaluation metrics: semantic segmentation (confusion matrix, IoU, mIoU, accuracies) and
COCO-style box and mask AP (as pycocotools computes it)."""

from .coco import COCOEvaluator, box_iou_xywh, coco_ap, format_table, mask_iou
from .segmentation import (
    SegmentationMeter,
    class_accuracy,
    confusion_matrix,
    frequency_weighted_iou,
    iou_per_class,
    mean_accuracy,
    mean_iou,
    pixel_accuracy,
)

__all__ = [
    "COCOEvaluator",
    "coco_ap",
    "format_table",
    "box_iou_xywh",
    "mask_iou",
    "SegmentationMeter",
    "class_accuracy",
    "confusion_matrix",
    "frequency_weighted_iou",
    "iou_per_class",
    "mean_accuracy",
    "mean_iou",
    "pixel_accuracy",
]
