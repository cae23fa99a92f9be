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
    # Residual blocks after the stride-32 stage's two convs, a deeper "C5" (stride 32 only).
    # 2 blocks did not make RoIAlign at stride 32 reliably better (docs/ablation.md), so 0.
    c5_blocks: int = 0
    # The paper's C4 model at stride 16: the fifth stage (width widths[4]) runs on each pooled
    # 14×14 RoI, shared by an average-pool box branch and an upsampling mask branch, so the two
    # strides compare at equal depth. At stride 32 the fifth stage is the backbone's and the
    # conv heads stay, as in the paper's C5 model ("the res5 head is not applicable").
    c4_head: bool = False
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
    rpn_min_size: float = 1.0  # torchvision: 1e-3; proposals under a pixel go before NMS

    # RoI heads
    box_fg_iou: float = 0.5
    box_bg_iou: float = 0.5
    # torchvision: 512. With 1–4 objects an image 64 suffice. This, 32 mask channels and 8 mask
    # RoIs an image cut a step's cost enough for 10 epochs instead of 8 in the 5-minute budget
    # (measured mask AP 58.8 / AP50 82.9 in 289 s, against 54.7 / 77.3 in 354 s before); later
    # speed-ups bought 12 (docs/benchmarks.md).
    box_batch_per_image: int = 64
    box_positive_fraction: float = 0.25
    box_pool: int = 7
    box_fc: int = 256
    box_weights: tuple = (10.0, 10.0, 5.0, 5.0)
    # Foreground RoIs per image that train the mask head, drawn from the box head's (torchvision
    # takes them all). A few objects an image need few; the mask head costs most of a step.
    mask_batch_per_image: int = 8
    mask_pool: int = 14
    mask_channels: int = 32  # torchvision: 256; the mask head dominates a step's cost
    mask_convs: int = 4
    mask_size: int = 28  # = 2 × mask_pool (one 2× transposed conv)

    # Keypoints (the paper's §5): a head beside the mask head predicts num_keypoints maps of
    # 4 × keypoint_pool cells per RoI (keypoint_head.py); 0: no keypoint head.
    num_keypoints: int = 0
    keypoint_pool: int = 14
    keypoint_channels: int = 32
    keypoint_convs: int = 4
    keypoint_batch_per_image: int = 8
    # Keypoint RoIs are the boxes scaled by this about their centres, so that keypoints on an
    # object's outline (at or just past its tight box) fall inside the map.
    keypoint_box_scale: float = 1.25
    # The paper's keypoint head pools from FPN, whose finest levels serve small objects; with one
    # coarse map, the keypoint branch also pools the backbone's stage of this stride (0: none).
    keypoint_fine_stride: int = 4

    # Inference
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    mask_thresh: float = 0.5

    bbox_xform_clip: float = field(default=math.log(1000.0 / 16))

    def __post_init__(self):
        if (
            not isinstance(self.stride, int)
            or isinstance(self.stride, bool)
            or (self.stride not in (16, 32))
        ):
            raise ValueError(f"stride must be 16 or 32, got {self.stride!r}")
        if not isinstance(self.pooler, str) or self.pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, got {self.pooler!r}")
        if not isinstance(self.mask_loss, str) or self.mask_loss not in MASK_LOSSES:
            raise ValueError(f"mask_loss must be one of {MASK_LOSSES}, got {self.mask_loss!r}")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or (self.num_classes < 2)
        ):
            raise ValueError(
                f"num_classes must be >= 2 (background included), got {self.num_classes!r}"
            )
        if not isinstance(self.c4_head, bool):
            raise ValueError(f"c4_head must be True or False, got {self.c4_head!r}")
        self._check_numbers()
        if self.mask_size != 2 * self.mask_pool:  # the mask head upsamples once, by 2
            raise ValueError(
                f"mask_size must be 2 * mask_pool = {2 * self.mask_pool}, got {self.mask_size}"
            )
        if self.uses_c4_head and self.mask_pool % 2:  # the stride-2 fifth stage halves it exactly
            raise ValueError(f"c4_head needs an even mask_pool, got {self.mask_pool}")
        if len(self.widths) < self.num_stages + self.uses_c4_head:
            raise ValueError(
                f"widths needs {self.num_stages + self.uses_c4_head} entries for stride "
                f"{self.stride}"
                + (" with c4_head (the per-RoI fifth stage's width)" if self.uses_c4_head else "")
            )

    def _check_numbers(self):
        """Counts are ints, IoUs/fractions/thresholds lie in [0, 1], sizes are positive."""
        counts = ("in_channels", "rpn_channels", "rpn_batch_per_image", "rpn_pre_nms_top_n_train",
                  "rpn_post_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test",
                  "box_batch_per_image", "mask_batch_per_image", "box_pool", "box_fc", "mask_pool", "mask_channels",
                  "mask_size", "detections_per_image", "keypoint_pool", "keypoint_channels",
                  "keypoint_batch_per_image")  # fmt: skip
        for name in counts + ("mask_convs", "c5_blocks", "sampling_ratio", "num_keypoints",
                              "keypoint_convs"):  # fmt: skip
            v = getattr(self, name)
            low = 1 if name in counts else (-(2**31) if name == "sampling_ratio" else 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                what = "an int (<= 0: adaptive)" if name == "sampling_ratio" else f"an int >= {low}"
                raise ValueError(f"{name} must be {what}, got {v!r}")
        fractions = ("rpn_fg_iou", "rpn_bg_iou", "rpn_positive_fraction", "rpn_nms", "box_fg_iou",
                     "box_bg_iou", "box_positive_fraction", "score_thresh", "nms_thresh",
                     "mask_thresh")  # fmt: skip
        for name in fractions:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
        for fg, bg in (("rpn_fg_iou", "rpn_bg_iou"), ("box_fg_iou", "box_bg_iou")):
            if getattr(self, bg) > getattr(self, fg):
                raise ValueError(
                    f"{bg} ({getattr(self, bg)}) must be <= {fg} ({getattr(self, fg)})"
                )
        for name in ("anchor_sizes", "anchor_ratios", "widths", "box_weights"):
            v = getattr(self, name)
            number = lambda e: isinstance(e, int | float) and not isinstance(e, bool)  # noqa: E731
            ok = isinstance(v, tuple | list) and len(v) > 0
            ok = ok and all(number(e) and math.isfinite(e) and e > 0 for e in v)
            if not ok:
                raise ValueError(f"{name} must be a non-empty tuple of positive numbers, got {v!r}")
        real = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
        if self.keypoint_fine_stride not in (0, 2, 4, 8) or isinstance(
            self.keypoint_fine_stride, bool
        ):
            raise ValueError(
                f"keypoint_fine_stride must be 0 (none), 2, 4 or 8, got {self.keypoint_fine_stride!r}"
            )
        if not (real(self.keypoint_box_scale) and 1 <= self.keypoint_box_scale <= 4):
            raise ValueError(
                f"keypoint_box_scale must be a number in [1, 4], got {self.keypoint_box_scale!r}"
            )
        if not (
            real(self.rpn_min_size) and real(self.bbox_xform_clip)
            and self.rpn_min_size >= 0 and self.bbox_xform_clip > 0
        ):  # fmt: skip
            raise ValueError(
                f"rpn_min_size must be >= 0 and bbox_xform_clip > 0, got {self.rpn_min_size!r} "
                f"and {self.bbox_xform_clip!r}"
            )

    @property
    def num_stages(self):
        return 4 if self.stride == 16 else 5

    @property
    def uses_c4_head(self):
        """Whether the RoI heads run the fifth stage per RoI (``c4_head``, stride 16 only)."""
        return self.c4_head and self.stride == 16

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
