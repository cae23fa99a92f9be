"""Receptive-field arithmetic: how many input pixels one output pixel can see.

For a stack of layers with kernel k, stride s and dilation d, the receptive field grows by
(k−1)·d·(product of earlier strides) per layer: r = 1 + Σ (kᵢ−1)·dᵢ·∏_{j<i} sⱼ.
L stacked 3×3 stride-1 convolutions see 1 + 2L pixels; a 2× downsampling doubles every later step.
"""

import numbers

from .. import nn
from .blocks import ResidualBlock


def receptive_field(layers):
    """Receptive field (pixels per side) of ``layers``: an iterable of ``(kernel, stride, dilation)``
    (stride and dilation may be omitted)."""
    r, jump = 1, 1
    for spec in layers:
        k, s, d = (tuple(spec) + (1, 1))[:3]
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (k, s, d)):
            raise TypeError(f"kernel, stride and dilation must be ints, got {spec!r}")
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"kernel, stride and dilation must be >= 1, got {spec}")
        r += (k - 1) * d * jump
        jump *= s
    return r


def _specs(module):
    if isinstance(module, nn.Conv2d):
        yield module.kernel_size[0], module.stride[0], module.dilation[0]
    elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        s = module.stride or module.kernel_size
        s = s if isinstance(s, int) else s[0]
        yield k, s, getattr(module, "dilation", 1) if isinstance(module, nn.MaxPool2d) else 1
    elif isinstance(module, nn.Sequential | nn.ModuleList):
        for m in module:
            yield from _specs(m)
    elif isinstance(module, ResidualBlock):  # the longest path: the convs (the skip sees less)
        yield from _specs(module.conv1)
        yield from _specs(module.conv2)


def receptive_field_of(module):
    """Receptive field of a ``Sequential`` of convolutions, pools and residual blocks (other layers
    are neutral)."""
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"receptive_field_of: module must be an nn.Module, got {type(module).__name__}"
        )
    return receptive_field(_specs(module))
