"""Region proposal network: objectness and box deltas for every anchor, losses, and proposals."""

import numpy as np

from ... import functional as F
from ... import nn
from .anchors import grid_anchors
from .matching import BELOW_LOW, BETWEEN, match, sample_balanced


def per_image_sizes(image_sizes, n):
    """A list of ``n`` ``(H, W)`` pairs from one pair (every image) or a list of them."""
    if len(image_sizes) == 2 and all(isinstance(v, int | np.integer) for v in image_sizes):
        return [tuple(image_sizes)] * n
    if len(image_sizes) != n:
        raise ValueError(
            f"image_sizes: expected {n} (H, W) pairs, one per image, got {image_sizes}"
        )
    return [tuple(s) for s in image_sizes]


class RPNHead(nn.Module):
    """3×3 conv → ReLU → two 1×1 convs: objectness ``(N, A, H, W)`` and deltas ``(N, 4A, H, W)``."""

    def __init__(self, in_channels, channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)
        for layer in (self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)  # small, as torchvision: start near "no object"

    def forward(self, x):
        h = self.conv(x).relu()
        return self.cls_logits(h), self.bbox_pred(h)


def flatten_head_outputs(objectness, deltas):
    """``(N, A, H, W)`` and ``(N, 4A, H, W)`` → ``(N, H·W·A)`` and ``(N, H·W·A, 4)``, in the anchors'
    cell-major order."""
    N, A, H, W = objectness.shape  # A anchors per cell
    obj = objectness.permute(0, 2, 3, 1).reshape(N, H * W * A)
    d = deltas.reshape(N, A, 4, H, W).permute(0, 3, 4, 1, 2).reshape(N, H * W * A, 4)
    return obj, d


class RPN(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg
        self.num_anchors = len(cfg.anchor_sizes) * len(cfg.anchor_ratios)
        self.head = RPNHead(in_channels, cfg.rpn_channels, self.num_anchors)
        self.coder = F.BoxCoder((1.0, 1.0, 1.0, 1.0), cfg.bbox_xform_clip)

    def anchors(self, feature_size):
        return grid_anchors(
            feature_size, self.cfg.stride, self.cfg.anchor_sizes, self.cfg.anchor_ratios
        )

    def forward(self, features, image_sizes, targets=None, rng=None):
        """Returns (proposals: list of ``(P_i, 4)`` arrays, losses: dict, empty at inference).

        image_sizes: each image's own ``(H, W)`` (proposals are clipped to it), or one ``(H, W)``
        for all."""
        objectness, deltas = self.head(features)
        obj, d = flatten_head_outputs(objectness, deltas)
        anchors = self.anchors(features.shape[2:])
        sizes = per_image_sizes(image_sizes, len(features))
        proposals = self._propose(obj.numpy(), d.numpy(), anchors, sizes)
        losses = {}
        if targets is not None:
            losses = self._losses(obj, d, anchors, targets, rng)
        return proposals, losses

    def _propose(self, obj, deltas, anchors, sizes):
        cfg = self.cfg
        pre = cfg.rpn_pre_nms_top_n_train if self.training else cfg.rpn_pre_nms_top_n_test
        post = cfg.rpn_post_nms_top_n_train if self.training else cfg.rpn_post_nms_top_n_test
        out = []
        for scores, dl, image_size in zip(obj, deltas, sizes, strict=True):
            top = np.argsort(-scores, kind="stable")[:pre]
            boxes = self.coder.decode(dl[top], anchors[top])
            boxes = F.clip_boxes_to_image(boxes, image_size)
            keep = F.remove_small_boxes(boxes, cfg.rpn_min_size)
            boxes, s = boxes[keep], scores[top][keep]
            keep = F.nms(boxes, s, cfg.rpn_nms)[:post]
            out.append(np.asarray(boxes[keep], dtype=np.float32))
        return out

    def _losses(self, obj, deltas, anchors, targets, rng):
        """BCE on sampled anchors' objectness; smooth L1 (β = 1/9) on positives' deltas, both
        normalised by the number of sampled anchors (torchvision's convention)."""
        cfg = self.cfg
        M = len(anchors)
        sampled, labels, pos_idx, reg_targets = [], [], [], []
        for i, t in enumerate(targets):
            gt = t["boxes"]
            matches = match(F.box_iou(gt, anchors), cfg.rpn_fg_iou, cfg.rpn_bg_iou, True)
            lab = (matches >= 0).astype(np.int64)
            lab[matches == BETWEEN] = -1
            lab[matches == BELOW_LOW] = 0
            pos, neg = sample_balanced(lab, cfg.rpn_batch_per_image, cfg.rpn_positive_fraction, rng)
            idx = np.concatenate([pos, neg])
            sampled.append(idx + i * M)
            labels.append(lab[idx])
            pos_idx.append(pos + i * M)
            if len(pos):
                reg_targets.append(self.coder.encode(gt[matches[pos]], anchors[pos]))
        sampled = np.concatenate(sampled)
        labels = np.concatenate(labels).astype(obj.dtype)
        pos_idx = np.concatenate(pos_idx)
        n = max(len(sampled), 1)
        loss_obj = F.binary_cross_entropy_with_logits(obj.reshape(-1)[sampled], labels)
        if len(pos_idx):
            target = np.concatenate(reg_targets).astype(obj.dtype)
            pred = deltas.reshape(-1, 4)[pos_idx]
            loss_box = F.smooth_l1_loss(pred, target, beta=1 / 9, reduction="sum") / n
        else:
            loss_box = (deltas * 0).sum()
        return {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}
