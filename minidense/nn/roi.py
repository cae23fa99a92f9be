"""Module forms of the RoI ops (as torchvision.ops.RoIAlign / RoIPool), with a readable repr."""

from .. import checks
from .. import functional as F
from ._inputs import check_input
from .module import Module


class RoIAlign(Module):
    """``RoIAlign(output_size, spatial_scale, sampling_ratio, aligned)(input, boxes)``.

    spatial_scale maps image pixels to the feature map: a 224-pixel image on a 14×14 map → 1/16.
    """

    def __init__(self, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
        super().__init__()
        # Checked here too, so a bad layer fails where it is built, not at its first forward.
        name = type(self).__name__
        checks.pair(output_size, name, "output_size", minimum=1)
        checks.spatial_scale(spatial_scale, name)
        checks.sampling_ratio(sampling_ratio, name)
        checks.flag(aligned, name, "aligned")
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input, boxes):
        check_input(self, input, "(N, C, H, W)", 4)
        return F.roi_align(input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio,
                         self.aligned)  # fmt: skip

    def extra_repr(self):
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")  # fmt: skip


class RoIWarp(RoIAlign):
    """RoIAlign on the box rounded to the feature grid (the ablation's middle row)."""

    def forward(self, input, boxes):
        check_input(self, input, "(N, C, H, W)", 4)
        return F.roi_warp(input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio,
                        self.aligned)  # fmt: skip


class RoIPool(Module):
    """``RoIPool(output_size, spatial_scale)(input, boxes)``: Fast R-CNN's quantized max pooling."""

    def __init__(self, output_size, spatial_scale=1.0):
        super().__init__()
        checks.pair(output_size, "RoIPool", "output_size", minimum=1)
        checks.spatial_scale(spatial_scale, "RoIPool")
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input, boxes):
        check_input(self, input, "(N, C, H, W)", 4)
        return F.roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
