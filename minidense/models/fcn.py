"""FCN-8s (Long et al., 2015), small: class scores predicted at strides 32, 16 and 8, fused
coarse-to-fine by transposed convolutions initialised to bilinear upsampling."""

from .. import nn
from .blocks import check_image_batch, check_positive_ints, conv_bn_relu


def _bilinear_up(channels, factor):
    """A transposed conv that starts as exact ×factor bilinear upsampling (kernel 2f, stride f)."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2,
                            bias=False)  # fmt: skip
    nn.init.bilinear_(up.weight)
    return up


class FCN(nn.Module):
    """``(N, in_channels, H, W)`` → logits ``(N, num_classes, H, W)``; H and W multiples of 32."""

    def __init__(self, in_channels=3, num_classes=2, base=16, norm="batch"):
        super().__init__()
        check_positive_ints("FCN", in_channels=in_channels, num_classes=num_classes, base=base)
        self.in_channels = in_channels
        w = [base, base * 2, base * 4, base * 8, base * 8]
        stages, c = [], in_channels
        for width in w:  # five stride-2 stages: strides 2, 4, 8, 16, 32
            stages.append(nn.Sequential(*conv_bn_relu(c, width, norm=norm), nn.MaxPool2d(2)))
            c = width
        self.stages = nn.ModuleList(stages)
        self.score8 = nn.Conv2d(w[2], num_classes, 1)
        self.score16 = nn.Conv2d(w[3], num_classes, 1)
        self.score32 = nn.Conv2d(w[4], num_classes, 1)
        self.up32 = _bilinear_up(num_classes, 2)
        self.up16 = _bilinear_up(num_classes, 2)
        self.up8 = _bilinear_up(num_classes, 8)

    def forward(self, x):
        check_image_batch(x, self.in_channels, "FCN", self.score8.weight.dtype)
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"FCN needs H and W divisible by 32, got {x.shape[2:]}")
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        s = self.up32(self.score32(feats[4])) + self.score16(feats[3])
        s = self.up16(s) + self.score8(feats[2])
        return self.up8(s)
