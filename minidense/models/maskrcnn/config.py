"""Mask R-CNN's knobs in one commented place (torchvision's defaults, scaled down for CPUs)."""

import math
from dataclasses import asdict, dataclass, field

POOLERS = ("roipool", "roiwarp", "roialign")
MASK_LOSSES = ("sigmoid", "softmax")


@dataclass
class MaskRCNNConfig:
    num_classes: int = 4  # including the background class 0
    in_channels: int = 3
    # Backbone: output stride 16 or 32 is the ablation's knob (ResNet C4 vs C5).
    stride: int = 16
    widths: tuple = (16, 32, 64, 96, 128)  # channels per stride-2 stage
    pooler: str = "roialign"  # "roipool" | "roiwarp" | "roialign"
    mask_loss: str = "sigmoid"  # per-class sigmoid, or a softmax over classes per pixel
    sampling_ratio: int = 2  # bilinear samples per bin side (roialign, roiwarp)

    # Anchors: sizes in input pixels, aspect ratios h/w.
    anchor_sizes: tuple = (16, 32, 64)
    anchor_ratios: tuple = (0.5, 1.0, 2.0)

    # RPN
    rpn_channels: int = 64
    rpn_fg_iou: float = 0.7
    rpn_bg_iou: float = 0.3
    rpn_batch_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n_train: int = 600
    rpn_post_nms_top_n_train: int = 150
    rpn_pre_nms_top_n_test: int = 300
    rpn_post_nms_top_n_test: int = 100
    rpn_nms: float = 0.7
    rpn_min_size: float = 1.0

    # RoI heads
    box_fg_iou: float = 0.5
    box_bg_iou: float = 0.5
    box_batch_per_image: int = 128  # torchvision: 512; fewer suffice for a few objects an image
    box_positive_fraction: float = 0.25
    box_pool: int = 7
    box_fc: int = 256
    box_weights: tuple = (10.0, 10.0, 5.0, 5.0)
    mask_pool: int = 14
    mask_channels: int = 64
    mask_convs: int = 4
    mask_size: int = 28  # = 2 × mask_pool (one 2× transposed conv)

    # Inference
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    mask_thresh: float = 0.5

    bbox_xform_clip: float = field(default=math.log(1000.0 / 16))

    def __post_init__(self):
        if self.stride not in (16, 32):
            raise ValueError(f"stride must be 16 or 32, got {self.stride}")
        if self.pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, got {self.pooler!r}")
        if self.mask_loss not in MASK_LOSSES:
            raise ValueError(f"mask_loss must be one of {MASK_LOSSES}, got {self.mask_loss!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {self.num_classes}")
        if self.mask_size != 2 * self.mask_pool:  # the mask head upsamples once, by 2
            raise ValueError(
                f"mask_size must be 2 * mask_pool = {2 * self.mask_pool}, got {self.mask_size}"
            )
        if len(self.widths) < self.num_stages:
            raise ValueError(f"widths needs {self.num_stages} entries for stride {self.stride}")

    @property
    def num_stages(self):
        return 4 if self.stride == 16 else 5

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
