"""Evaluation metrics: semantic segmentation (confusion matrix, IoU, mIoU, accuracies)."""

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

# TODO: re-export the COCO-style box/mask AP from .coco once minidense/metrics/coco.py lands.

__all__ = [
    "SegmentationMeter",
    "class_accuracy",
    "confusion_matrix",
    "frequency_weighted_iou",
    "iou_per_class",
    "mean_accuracy",
    "mean_iou",
    "pixel_accuracy",
]
