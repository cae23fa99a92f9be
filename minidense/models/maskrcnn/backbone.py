"""A small convolutional backbone whose output stride is the ablation's knob (16 or 32)."""

from ... import nn
from ..blocks import ResidualBlock, conv_bn_relu


class Backbone(nn.Module):
    """``(N, 3, H, W)`` → ``(N, widths[S-1], H/stride, W/stride)`` with S = log2(stride) stages.

    Each stage halves the resolution with a stride-2 3×3 conv, then refines with a 3×3 conv.
    At stride 32 the last stage (our C5) may end with ``c5_blocks`` residual blocks, to give
    the coarse map a deeper stage like ResNet's C5 (docs/ablation.md measures 2).
    """

    def __init__(self, in_channels, widths, stride, c5_blocks=0):
        super().__init__()
        if stride not in (16, 32):
            raise ValueError(f"stride must be 16 or 32, got {stride!r}")
        if isinstance(c5_blocks, bool) or not isinstance(c5_blocks, int) or c5_blocks < 0:
            raise ValueError(f"Backbone: c5_blocks must be an int >= 0, got {c5_blocks!r}")
        stages, c = [], in_channels
        for w in widths[: {16: 4, 32: 5}[stride]]:
            down = nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False)
            stages.append([down, nn.BatchNorm2d(w), nn.ReLU(), *conv_bn_relu(w, w)])
            c = w
        if stride == 32:
            stages[-1] += [ResidualBlock(c) for _ in range(c5_blocks)]
        self.stages = nn.Sequential(*(nn.Sequential(*s) for s in stages))
        self.out_channels = c
        self.stride = stride

    def forward(self, x):
        return self.stages(x)

    def forward_with(self, x, stage):
        """The output map, and on the way the output of stage ``stage`` (stride
        ``2 ** (stage + 1)``): a finer map for a head that needs detail (the keypoint head)."""
        kept = None
        for k, s in enumerate(self.stages):
            x = s(x)
            kept = x if k == stage else kept
        return x, kept
