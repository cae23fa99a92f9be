"""The user-facing functions, with PyTorch's names: ``import minidense.functional as F``.

Each one validates its arguments and calls a ``Function`` from ``minidense.ops``.
"""

from . import checks
from .ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)
from .ops.conv import conv2d, conv_transpose2d
from .ops.elementwise import abs, clamp, exp, log, maximum, minimum, sqrt, where
from .ops.loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss, smooth_l1_loss
from .ops.matmul import linear
from .ops.norm import batch_norm, batch_norm_relu, group_norm
from .ops.pool import avg_pool2d, max_pool2d, max_unpool2d
from .ops.reduce import max, mean, min, sum
from .ops.roi import roi_align, roi_pool, roi_warp
from .ops.shape import cat, concat, flatten, pad, permute, reshape, stack, transpose
from .ops.upsample import bed_of_nails, bilinear_kernel, interpolate

__all__ = [
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "clamp", "where", "maximum", "minimum",
    "cross_entropy", "binary_cross_entropy_with_logits", "smooth_l1_loss", "mse_loss",
    "sum", "mean", "max", "min",
    "reshape", "flatten", "permute", "transpose", "concat", "cat", "stack", "pad",
    "exp", "log", "sqrt", "abs", "matmul", "linear",
    "batch_norm", "batch_norm_relu", "group_norm",
    "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "max_unpool2d",
    "interpolate", "bed_of_nails", "bilinear_kernel",
    "roi_align", "roi_pool", "roi_warp",
    "nms", "batched_nms", "box_iou", "box_area", "clip_boxes_to_image", "remove_small_boxes",
    "BoxCoder",
]  # fmt: skip


def matmul(a, b):
    """``a @ b`` with NumPy's rules (batch axes broadcast); both must be Tensors."""
    return checks.tensor(a, "matmul", "a") @ checks.tensor(b, "matmul", "b")
