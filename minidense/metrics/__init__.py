"""Evaluation metrics: semantic segmentation (confusion matrix, IoU, mIoU, accuracies),
COCO-style box, mask and keypoint AP (as pycocotools computes them) and panoptic quality."""

from .coco import COCOEvaluator, box_iou_xywh, coco_ap, format_table, mask_iou
from .keypoints import KEYPOINT_STAT_NAMES, KeypointEvaluator, format_keypoint_table, keypoint_ap
from .panoptic import PanopticQuality, format_pq_table
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
    "KEYPOINT_STAT_NAMES",
    "KeypointEvaluator",
    "format_keypoint_table",
    "keypoint_ap",
    "PanopticQuality",
    "format_pq_table",
    "SegmentationMeter",
    "class_accuracy",
    "confusion_matrix",
    "frequency_weighted_iou",
    "iou_per_class",
    "mean_accuracy",
    "mean_iou",
    "pixel_accuracy",
]
