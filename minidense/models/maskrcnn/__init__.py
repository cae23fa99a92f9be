"""A small Mask R-CNN: one file per component (anchors, matching, rpn, roi_heads, paste, model)."""

from .config import MaskRCNNConfig
from .model import MaskRCNN

__all__ = ["MaskRCNN", "MaskRCNNConfig"]
