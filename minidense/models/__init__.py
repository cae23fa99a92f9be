"""Models: U-Net, SegNet and FCN for semantic segmentation; Mask R-CNN for instances."""

from .fcn import FCN
from .receptive_field import receptive_field, receptive_field_of
from .segnet import SegNet
from .unet import UNet

__all__ = ["UNet", "SegNet", "FCN", "receptive_field", "receptive_field_of"]
