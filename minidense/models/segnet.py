"""SegNet (Badrinarayanan et al., 2017), small: the decoder upsamples with max-unpooling, putting
each value back where the encoder's max-pool found it."""

from .. import nn
from .blocks import check_image_batch, check_min_size, check_positive_ints, conv_bn_relu


class SegNet(nn.Module):
    """``(N, in_channels, H, W)`` → logits ``(N, num_classes, H, W)``."""

    def __init__(self, in_channels=3, num_classes=2, depth=3, base=16, norm="batch"):
        super().__init__()
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        check_positive_ints("SegNet", in_channels=in_channels, num_classes=num_classes, base=base)
        self.in_channels, self.depth = in_channels, depth
        widths = [base * 2**i for i in range(depth)]
        ins = [in_channels] + widths[:-1]
        self.enc = nn.ModuleList(
            nn.Sequential(
                *conv_bn_relu(ins[i], widths[i], norm=norm),
                *conv_bn_relu(widths[i], widths[i], norm=norm),
            )  # fmt: skip
            for i in range(depth)
        )
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        outs = [widths[0]] + widths[:-1]
        self.dec = nn.ModuleList(
            nn.Sequential(
                *conv_bn_relu(widths[i], widths[i], norm=norm),
                *conv_bn_relu(widths[i], outs[i], norm=norm),
            )  # fmt: skip
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 3, padding=1)

    def forward(self, x):
        check_image_batch(x, self.in_channels, "SegNet", self.head.weight.dtype)
        check_min_size(x, self.depth, "SegNet")
        memory = []
        for block in self.enc:
            x = block(x)
            size = x.shape
            x, idx = self.pool(x)
            memory.append((idx, size))
        for block in self.dec:
            idx, size = memory.pop()
            x = block(self.unpool(x, idx, output_size=size[2:]))
        return self.head(x)
