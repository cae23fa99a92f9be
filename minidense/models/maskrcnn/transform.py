"""From what a user passes to the tensors the network takes: images batched by padding (as
torchvision's GeneralizedRCNNTransform), and targets checked entry by entry.

Images of different sizes share one batch: each is centred (x − 0.5, the model's normalisation)
and zero-padded at the bottom and right to a common size, rounded up to a multiple of the
backbone's stride, so every image's feature cells line up with its pixels the same way. Each
image keeps its own size: proposals and detections are clipped to it and masks pasted at it.
"""

from collections.abc import Mapping

import numpy as np

from ... import functional as F
from ...tensor import Tensor
from ..blocks import check_image_batch


def _image_tensor(image, dtype, name):
    """An array or Tensor as a Tensor; float arrays (NumPy's float64 default too) join ``dtype``."""
    if isinstance(image, Tensor):
        return image
    try:
        x = np.asarray(image)
    except ValueError:  # a ragged nested list
        raise TypeError(f"MaskRCNN: {name} must be a numeric array or Tensor") from None
    if x.ndim == 0:
        raise TypeError(
            f"MaskRCNN: {name} must be an (N, C, H, W) batch or a list of (C, H, W) images, got "
            f"{type(image).__name__}"
        )
    if x.dtype.kind == "f":
        x = x.astype(dtype)
    elif x.dtype.kind not in "biu":
        raise TypeError(
            f"MaskRCNN: {name} must be a numeric array or Tensor, got dtype {x.dtype} "
            f"({type(image).__name__})"
        )
    return Tensor(x)


def batch_images(images, in_channels, dtype, stride):
    """``images`` — an ``(N, C, H, W)`` array or Tensor, or a list of ``(C, H_i, W_i)`` ones —
    as (the centred, padded batch ``(N, C, H, W)`` with H, W multiples of ``stride``, and the
    list of each image's own ``(H_i, W_i)``)."""
    if isinstance(images, list | tuple):
        xs = []
        for i, image in enumerate(images):
            x = _image_tensor(image, dtype, f"images[{i}]")
            if x.ndim != 3:
                raise ValueError(
                    f"MaskRCNN: images[{i}] must be one (C, H, W) image, got shape {x.shape}"
                )
            check_image_batch(x[None], in_channels, f"MaskRCNN (images[{i}])", dtype)
            xs.append(x)
        sizes = [x.shape[1:] for x in xs]
    else:
        x = _image_tensor(images, dtype, "images")
        if x.ndim != 4:
            raise ValueError(
                f"MaskRCNN: images must be an (N, C, H, W) batch or a list of (C, H, W) images, "
                f"got shape {x.shape}"
            )
        check_image_batch(x, in_channels, "MaskRCNN", dtype)
        xs, sizes = None, [x.shape[2:]] * len(x)
    if not sizes:
        return None, []
    if min(min(s) for s in sizes) < 1:
        raise ValueError(f"MaskRCNN: images must have H, W >= 1, got sizes {sizes}")
    H = -(-max(s[0] for s in sizes) // stride) * stride
    W = -(-max(s[1] for s in sizes) // stride) * stride
    if xs is None:
        return _pad(x - 0.5, H, W), sizes
    return F.concat([_pad(x[None] - 0.5, H, W) for x in xs]), sizes


def _pad(x, H, W):
    h, w = x.shape[2:]
    return x if (h, w) == (H, W) else F.pad(x, (0, W - w, 0, H - h))


def _numeric(value, i, key, kinds):
    """A target entry as an array of one of the dtype ``kinds``, or an error naming it."""
    what = f"targets[{i}][{key!r}]"
    try:
        a = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
    except (ValueError, TypeError):
        raise TypeError(
            f"{what} must be a numeric array, got a ragged {type(value).__name__}"
        ) from None
    if a.dtype.kind not in kinds:
        raise TypeError(
            f"{what} must be a numeric array, got dtype {a.dtype} ({type(value).__name__})"
        )
    return a


def check_targets(targets, sizes, num_classes):
    """The targets, checked, with their entries as arrays (lists and Tensors are accepted)."""
    n = len(sizes)
    if not isinstance(targets, list | tuple) or len(targets) != n:
        raise ValueError(
            f"targets must be a list with one dict per image ({n}), got {type(targets).__name__}"
        )
    checked = []
    for i, (t, (H, W)) in enumerate(zip(targets, sizes, strict=True)):
        if not isinstance(t, Mapping):
            raise TypeError(
                f"targets[{i}] must be a dict with 'boxes', 'labels' and 'masks', got "
                f"{type(t).__name__}"
            )
        for key in ("boxes", "labels", "masks"):
            if key not in t:
                raise ValueError(f"targets[{i}] has no {key!r} entry")
        boxes = _numeric(t["boxes"], i, "boxes", "biuf")
        labels = _numeric(t["labels"], i, "labels", "biuf")
        masks = _numeric(t["masks"], i, "masks", "biuf")
        k = len(boxes) if boxes.ndim else -1
        _check_boxes(boxes, k, i)
        if labels.shape != (k,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"targets[{i}]['labels'] must be {k} integers, got {labels.shape} {labels.dtype}"
            )
        if k and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(
                f"targets[{i}]['labels'] must be in 1..{num_classes - 1} (0 is background), "
                f"got {labels.min()}..{labels.max()}"
            )
        if masks.shape != (k, H, W):
            raise ValueError(
                f"targets[{i}]['masks'] must have shape {(k, H, W)} (the image's size), got "
                f"{masks.shape}"
            )
        checked.append({**t, "boxes": boxes, "labels": labels, "masks": masks})
    return checked


def _check_boxes(boxes, k, i):
    if boxes.shape != (k, 4) or not np.isfinite(boxes).all():
        got = f"shape {boxes.shape}"
        if boxes.shape == (k, 4):
            row = np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0]
            got = f"a NaN or infinite value in row {row}: {boxes[row].tolist()}"
        raise ValueError(f"targets[{i}]['boxes'] must be finite (K, 4), got {got}")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(
            f"targets[{i}]['boxes'] must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1; "
            "convert (x, y, w, h) boxes with x2 = x + w, y2 = y + h"
        )
    flat = (boxes[:, 2] == boxes[:, 0]) | (boxes[:, 3] == boxes[:, 1])
    if flat.any():  # its IoU with itself is 0/0, and its regression target log(0)
        row = np.flatnonzero(flat)[0]
        raise ValueError(
            f"targets[{i}]['boxes'] row {row} has zero width or height "
            f"({boxes[row].tolist()}): every box must enclose some area; drop it"
        )
