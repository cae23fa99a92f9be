"""Mask R-CNN (He et al., 2017), small: backbone → RPN → RoI heads (box + mask, and keypoints
when configured), one feature map."""

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...tensor import default_generator
from .backbone import Backbone
from .config import MaskRCNNConfig
from .keypoint_head import KeypointBranch
from .paste import paste_masks
from .roi_heads import RoIHeads
from .rpn import RPN
from .transform import batch_images, check_targets


class MaskRCNN(nn.Module):
    """``model(images, targets)`` in training returns a dict of ``loss_*`` Tensors;
    ``model.predict(images)`` returns, per image, ``boxes (D, 4)``, ``labels (D,)``,
    ``scores (D,)`` and ``masks (D, H, W)`` bool, and with ``num_keypoints`` set
    ``keypoints (D, K, 3)`` rows ``(x, y, score)``.

    images: float ``(N, 3, H, W)`` in [0, 1] (array or Tensor), or a list of ``(3, H_i, W_i)``
    images of different sizes (batched by zero-padding to a multiple of the stride, as
    torchvision does); targets: per image a dict with ``boxes (K, 4)`` (x1, y1, x2, y2) pixels,
    ``labels (K,)`` in 1..num_classes−1 and ``masks (K, H_i, W_i)`` (and ``keypoints
    (K, num_keypoints, 3)`` rows ``(x, y, v)`` for a keypoint head).
    """

    def __init__(self, config=None, **overrides):
        super().__init__()
        if config is None:
            config = MaskRCNNConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a MaskRCNNConfig or keyword overrides, not both")
        elif not isinstance(config, MaskRCNNConfig):
            raise TypeError(
                f"MaskRCNN: config must be a MaskRCNNConfig (or None, with keyword overrides), "
                f"got {type(config).__name__}; for a dict d use MaskRCNN(**d)"
            )
        self.cfg = config
        self.backbone = Backbone(config.in_channels, config.widths, config.stride, config.c5_blocks)
        self.rpn = RPN(config, self.backbone.out_channels)
        self.roi_heads = RoIHeads(config, self.backbone.out_channels)
        self.keypoint_head = (
            KeypointBranch(config, self.backbone.out_channels) if config.num_keypoints else None
        )

    def _features(self, images):
        """Backbone features of the batched images, each image's own (H, W), and the finer map
        the keypoint head pools too (None without one)."""
        dtype = next(self.parameters()).dtype
        batch, sizes = batch_images(images, self.cfg.in_channels, dtype, self.cfg.stride)
        if not sizes:
            return None, sizes, None
        if self.keypoint_head is None or self.keypoint_head.fine_stage is None:
            return self.backbone(batch), sizes, None
        features, fine = self.backbone.forward_with(batch, self.keypoint_head.fine_stage)
        return features, sizes, fine

    def forward(self, images, targets=None, rng=None):
        """Training: the ``loss_*`` dict. ``images``: an ``(N, C, H, W)`` array or Tensor, or a
        list of ``(C, H_i, W_i)`` images of any sizes (batched by padding); ``targets``: one dict
        per image, its masks at the image's own size."""
        if targets is None:
            if self.training:
                raise ValueError(
                    "MaskRCNN in training mode needs targets; call .eval() or predict()"
                )
            return self.predict(images)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"MaskRCNN: rng must be None or a numpy.random.Generator "
                f"(np.random.default_rng(seed)), got {type(rng).__name__}"
            )
        features, sizes, fine = self._features(images)  # images first: an NHWC batch gets its hint
        if not sizes:
            raise ValueError("MaskRCNN: no images to train on (an empty batch)")
        targets = check_targets(targets, sizes, self.cfg.num_classes)
        rng = rng if rng is not None else default_generator()
        proposals, losses = self.rpn(features, sizes, targets, rng)
        losses.update(self.roi_heads.losses(features, proposals, targets, rng))
        if self.keypoint_head is not None:
            losses.update(self.keypoint_head.losses(features, fine, proposals, targets, rng))
        return losses

    def predict(self, images):
        """Per image (of a batch, or of a list of images of any sizes): boxes in its own
        pixels, clipped to its size, and masks ``(D, H_i, W_i)`` at its size."""
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                features, sizes, fine = self._features(images)
                if not sizes:
                    return []
                proposals, _ = self.rpn(features, sizes)
                results = self.roi_heads.detect(features, proposals, sizes)
                if self.keypoint_head is not None:
                    self.keypoint_head.predict(features, fine, results)
            for r, size in zip(results, sizes, strict=True):
                r["masks"] = paste_masks(
                    r.pop("mask_probs"), r["boxes"], size, self.cfg.mask_thresh
                )
        finally:
            self.train(was_training)
        return results
