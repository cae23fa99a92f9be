"""A small convolutional backbone whose output stride is the ablation's knob (16 or 32)."""

from ... import nn
from ..blocks import conv_bn_relu


class Backbone(nn.Module):
    """``(N, 3, H, W)`` → ``(N, widths[S-1], H/stride, W/stride)`` with S = log2(stride) stages.

    Each stage halves the resolution with a stride-2 3×3 conv, then refines with a 3×3 conv.
    """

    def __init__(self, in_channels, widths, stride):
        super().__init__()
        stages, c = [], in_channels
        for w in widths[: {16: 4, 32: 5}[stride]]:
            down = nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False)
            stages.append(nn.Sequential(down, nn.BatchNorm2d(w), nn.ReLU(), *conv_bn_relu(w, w)))
            c = w
        self.stages = nn.Sequential(*stages)
        self.out_channels = c
        self.stride = stride

    def forward(self, x):
        return self.stages(x)
