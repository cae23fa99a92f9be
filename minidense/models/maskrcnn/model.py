"""Mask R-CNN (He et al., 2017), small: backbone → RPN → RoI heads (box + mask), one feature map."""

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...tensor import Tensor, default_generator
from ..blocks import check_image_batch
from .backbone import Backbone
from .config import MaskRCNNConfig
from .paste import paste_masks
from .roi_heads import RoIHeads
from .rpn import RPN


class MaskRCNN(nn.Module):
    """``model(images, targets)`` in training returns a dict of ``loss_*`` Tensors;
    ``model.predict(images)`` returns, per image, ``boxes (D, 4)``, ``labels (D,)``,
    ``scores (D,)`` and ``masks (D, H, W)`` bool.

    images: float ``(N, 3, H, W)`` in [0, 1] (array or Tensor); targets: per image a dict with
    ``boxes (K, 4)`` (x1, y1, x2, y2) pixels, ``labels (K,)`` in 1..num_classes−1 and
    ``masks (K, H, W)``.
    """

    def __init__(self, config=None, **overrides):
        super().__init__()
        if config is None:
            config = MaskRCNNConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a MaskRCNNConfig or keyword overrides, not both")
        self.cfg = config
        self.backbone = Backbone(config.in_channels, config.widths, config.stride, config.c5_blocks)
        self.rpn = RPN(config, self.backbone.out_channels)
        self.roi_heads = RoIHeads(config, self.backbone.out_channels)

    def _features(self, images):
        x = self._images(images)
        return self.backbone(x - 0.5), x.shape[2:]

    def _images(self, images):
        """The checked ``(N, C, H, W)`` image Tensor, in the model's dtype if given as an array."""
        if isinstance(images, Tensor):
            x = images
        else:  # a float array (NumPy's float64 default too) joins the model's dtype
            x = np.asarray(images)
            if x.dtype.kind == "f":
                x = x.astype(next(self.parameters()).dtype)
            x = Tensor(x)
        check_image_batch(x, self.cfg.in_channels, "MaskRCNN", next(self.parameters()).dtype)
        return x

    def forward(self, images, targets=None, rng=None):
        if targets is None:
            if self.training:
                raise ValueError(
                    "MaskRCNN in training mode needs targets; call .eval() or predict()"
                )
            return self.predict(images)
        images = self._images(images)  # checked first: an (N, H, W, C) batch gets its hint
        targets = self._check_targets(images, targets)
        rng = rng if rng is not None else default_generator()
        features, size = self._features(images)
        proposals, losses = self.rpn(features, size, targets, rng)
        losses.update(self.roi_heads.losses(features, proposals, targets, rng))
        return losses

    def predict(self, images):
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                features, size = self._features(images)
                proposals, _ = self.rpn(features, size)
                results = self.roi_heads.detect(features, proposals, size)
            for r in results:
                r["masks"] = paste_masks(
                    r.pop("mask_probs"), r["boxes"], size, self.cfg.mask_thresh
                )
        finally:
            self.train(was_training)
        return results

    def _check_targets(self, images, targets):
        """The targets, checked, with their entries as arrays (lists are accepted)."""
        n = len(images)
        if not isinstance(targets, list | tuple) or len(targets) != n:
            raise ValueError(
                f"targets must be a list with one dict per image ({n}), got {type(targets).__name__}"
            )
        H, W = images.shape[2:]
        checked = []
        for i, t in enumerate(targets):
            for key in ("boxes", "labels", "masks"):
                if key not in t:
                    raise ValueError(f"targets[{i}] has no {key!r} entry")
            boxes, labels, masks = (
                np.asarray(t["boxes"]),
                np.asarray(t["labels"]),
                np.asarray(t["masks"]),
            )
            k = len(boxes)
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
            if labels.shape != (k,) or labels.dtype.kind not in "iu":
                raise ValueError(
                    f"targets[{i}]['labels'] must be {k} integers, got {labels.shape} {labels.dtype}"
                )
            if k and (labels.min() < 1 or labels.max() >= self.cfg.num_classes):
                raise ValueError(
                    f"targets[{i}]['labels'] must be in 1..{self.cfg.num_classes - 1} (0 is background), "
                    f"got {labels.min()}..{labels.max()}"
                )
            if masks.shape != (k, H, W):
                raise ValueError(
                    f"targets[{i}]['masks'] must have shape {(k, H, W)}, got {masks.shape}"
                )
            checked.append({**t, "boxes": boxes, "labels": labels, "masks": masks})
        return checked
