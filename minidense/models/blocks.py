"""Building blocks shared by the segmentation models."""

import numpy as np

from .. import nn
from ..tensor import Tensor


def conv_bn_relu(c_in, c_out, kernel_size=3, norm="batch"):
    """3×3 conv (same padding) → normalisation → ReLU. The conv has no bias when a norm follows."""
    if norm is not None and (not isinstance(norm, str) or norm not in ("batch", "group")):
        raise ValueError(f"norm must be 'batch', 'group' or None, got {norm!r}")
    layers = [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=norm is None)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(c_out))
    elif norm == "group":
        # Up to 8 groups; the count must divide the channels (12 channels → 6 groups).
        groups = next(g for g in range(min(8, c_out), 0, -1) if c_out % g == 0)
        layers.append(nn.GroupNorm(groups, c_out))
    elif norm is not None:
        raise ValueError(f"norm must be 'batch', 'group' or None, got {norm!r}")
    layers.append(nn.ReLU())
    return layers


def double_conv(c_in, c_out, norm="batch"):
    """U-Net's unit: two 3×3 conv → norm → ReLU layers."""
    return nn.Sequential(
        *conv_bn_relu(c_in, c_out, norm=norm), *conv_bn_relu(c_out, c_out, norm=norm)
    )


class ResidualBlock(nn.Module):
    """ResNet's basic block on ``(N, C, H, W)``: ``relu(x + bn(conv(relu(bn(conv(x))))))``.

    The last batch norm's scale starts at zero (Goyal et al., 2017), so each block starts as the
    identity: a stack of them trained from scratch then behaves like a shallow net at first.
    """

    def __init__(self, channels):
        super().__init__()
        check_positive_ints("ResidualBlock", channels=channels)
        self.conv1 = nn.Sequential(*conv_bn_relu(channels, channels))
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.bn2.weight.data[...] = 0
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.conv1(x))) + x)


def check_positive_ints(model, **values):
    """Constructor arguments that count things (channels, classes, widths) must be ints >= 1."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{model}: {name} must be a positive integer, got {v!r}")


def check_image_batch(x, in_channels, model, dtype=None):
    """Models take float ``(N, C, H, W)``; catch the common mix-ups with a message that says how.

    ``dtype``: the model's parameter dtype, which the images must match.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{model} expects a minidense Tensor (N, C, H, W), got {type(x).__name__}; "
            "wrap arrays with minidense.tensor(x)"
        )
    if x.ndim != 4:
        raise ValueError(f"{model} expects a batch (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{model} expects float images, got {x.dtype}; convert uint8 images with "
            "x.astype(np.float32) / 255"
        )
    if x.shape[1] != in_channels:
        hint = (
            " — it looks like (N, H, W, C); use x.permute(0, 3, 1, 2)"
            if x.shape[-1] == in_channels
            else ""
        )
        raise ValueError(
            f"{model} expects {in_channels} input channels at axis 1, got shape {x.shape}{hint}"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{model}'s parameters are {np.dtype(dtype)} but the images are {x.dtype}; convert "
            f"the images with x.astype(np.{np.dtype(dtype)}) (or the model with .double()/.float())"
        )


def check_min_size(x, depth, model):
    """An encoder that halves H and W ``depth`` times needs at least 2**depth pixels per side
    (smaller inputs would fail deep inside, e.g. in a batch norm over a 1×1 map)."""
    need = 2**depth
    if min(x.shape[2:]) < need:
        raise ValueError(
            f"{model}(depth={depth}) halves H and W {depth} times, so they must be at least "
            f"{need}, got {x.shape[2:]}; use larger images or a smaller depth"
        )
