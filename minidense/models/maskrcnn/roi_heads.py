"""RoI heads: pool each proposal's features, classify and refine its box, predict its mask."""

import numpy as np

from ... import functional as F
from ... import nn
from ...tensor import Tensor
from .matching import BELOW_LOW, BETWEEN, match, sample_balanced
from .rpn import per_image_sizes


def boxes_on(boxes, device):
    """Per-image boxes, sampled on the host, on ``device``: where the features they pool are."""
    return boxes if device == "cpu" else [Tensor(b).to(device) for b in boxes]


def pool_features(features, boxes, output_size, cfg):
    """The ablation's switch: quantized max (RoIPool), quantized bilinear (RoIWarp) or exact
    bilinear (RoIAlign) pooling from ``features (N, C, H, W)`` of ``boxes``, one ``(K_i, 4)``
    array per image (as the RoI ops take them) -> ``(ΣK_i, C, size, size)``."""
    scale = 1.0 / cfg.stride
    boxes = boxes_on(boxes, features.device)
    if cfg.pooler == "roipool":
        return F.roi_pool(features, boxes, output_size, scale)
    if cfg.pooler == "roiwarp":
        return F.roi_warp(features, boxes, output_size, scale, cfg.sampling_ratio, aligned=False)
    # aligned=True as Detectron2 (torchvision's MultiScaleRoIAlign keeps the legacy False): the
    # half-pixel shift puts samples where the paper's RoIAlign puts them, on exact positions.
    return F.roi_align(features, boxes, output_size, scale, cfg.sampling_ratio, aligned=True)


class BoxHead(nn.Module):
    """Pooled ``(K, C, 7, 7)`` → two FC layers → class logits ``(K, classes)`` and class-specific
    deltas ``(K, 4·classes)``."""

    def __init__(self, in_channels, pool, fc, num_classes):
        super().__init__()
        self.fc6 = nn.Linear(in_channels * pool * pool, fc)
        self.fc7 = nn.Linear(fc, fc)
        self.cls_score = nn.Linear(fc, num_classes)
        self.bbox_pred = nn.Linear(fc, 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)

    def forward(self, pooled):
        h = self.fc7(self.fc6(pooled.flatten(1)).relu()).relu()
        return self.cls_score(h), self.bbox_pred(h)


class MaskHead(nn.Module):
    """Pooled ``(K, C, 14, 14)`` → 3×3 convs → 2× transposed conv → 1×1 conv: ``(K, classes, 28, 28)``
    mask logits, one mask per class (the class decides which is used)."""

    def __init__(self, in_channels, channels, num_convs, num_classes):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU()]
            c = channels
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.logits = nn.Conv2d(channels, num_classes, 1)

    def forward(self, pooled):
        return self.logits(self.upsample(self.convs(pooled)).relu())


class Res5Head(nn.Module):
    """The paper's C4 head (its Fig. 4, left): the backbone's fifth stage run on each RoI after
    the pooler, shared by both branches. Pooled ``(K, C, 14, 14)`` → stride-2 3×3 conv → 3×3
    conv → ``(K, width, 7, 7)``. No batch norm: its statistics would mix sampled training RoIs
    with test proposals."""

    def __init__(self, in_channels, width):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.out_channels = width

    def forward(self, pooled):
        return self.convs(pooled)


class C4BoxHead(nn.Module):
    """``(K, C, 7, 7)`` from :class:`Res5Head` → global average → class logits ``(K, classes)``
    and class-specific deltas ``(K, 4·classes)``, as the paper's C4 box branch."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)

    def forward(self, x):
        h = x.mean(axis=(2, 3))
        return self.cls_score(h), self.bbox_pred(h)


class C4MaskHead(nn.Module):
    """``(K, C, 7, 7)`` from :class:`Res5Head` → two 2× transposed convs → 1×1 conv:
    ``(K, classes, 28, 28)`` mask logits. (The paper's C4 branch stops at 14×14; a second
    upsampling keeps the 28×28 masks of the stride-32 model, so strides compare like for like.)"""

    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(in_channels, channels, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.ReLU(),
        )  # fmt: skip
        self.logits = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x):
        return self.logits(self.upsample(x))


def mask_targets(gt_masks, matched, boxes, size):
    """Cut each matched ground-truth mask to its proposal box with roi_align at ``size``×``size``
    and threshold at 0.5 → ``(P, size, size)`` float {0, 1}.

    ``aligned=True`` because boxes have exclusive x2/y2 (pixel i spans [i, i + 1)): the -0.5 shift
    puts samples on pixel centres, so the box of a rectangle mask cuts ones up to its edges (with
    ``aligned=False`` the last row and column would sample half outside and come out 0)."""
    if len(boxes) == 0:
        return np.zeros((0, size, size), np.float32)
    masks = Tensor(gt_masks[:, None].astype(np.float32))
    rois = np.concatenate([matched[:, None].astype(np.float32), boxes], axis=1)
    cut = F.roi_align(masks, rois, size, 1.0, sampling_ratio=2, aligned=True).numpy()[:, 0]
    return (cut >= 0.5).astype(np.float32)


class RoIHeads(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg
        if cfg.uses_c4_head:
            # Both branches pool 14×14 and share the per-RoI fifth stage (paper, Fig. 4 left).
            self.res5 = Res5Head(in_channels, cfg.widths[4])
            self.box_head = C4BoxHead(self.res5.out_channels, cfg.num_classes)
            self.mask_head = C4MaskHead(self.res5.out_channels, cfg.mask_channels, cfg.num_classes)
            self.box_pool = cfg.mask_pool
        else:
            self.res5 = None
            self.box_head = BoxHead(in_channels, cfg.box_pool, cfg.box_fc, cfg.num_classes)
            self.mask_head = MaskHead(
                in_channels, cfg.mask_channels, cfg.mask_convs, cfg.num_classes
            )
            self.box_pool = cfg.box_pool
        self.coder = F.BoxCoder(cfg.box_weights, cfg.bbox_xform_clip)

    def _pool(self, features, boxes, size):
        """Pooled RoI features for a head, from one ``(K_i, 4)`` array of boxes per image:
        ``(K, C, size, size)``, or after the C4 head's per-RoI fifth stage
        ``(K, width, size/2, size/2)``."""
        pooled = pool_features(features, boxes, size, self.cfg)
        return pooled if self.res5 is None else self.res5(pooled)

    # ------------------------------------------------------------------ training
    def _sample(self, proposals, targets, rng):
        """Add the ground truth to the proposals, label them (IoU ≥ 0.5 foreground) and sample
        ``box_batch_per_image`` with at most 25% foreground, per image."""
        cfg = self.cfg
        out = []
        for props, t in zip(proposals, targets, strict=True):
            gt = t["boxes"].astype(np.float32)
            props = np.concatenate([props, gt]) if len(props) else gt
            matches = match(F.box_iou(gt, props), cfg.box_fg_iou, cfg.box_bg_iou)
            # An image without objects has no labels to index: everything is background.
            gt_labels = t["labels"][np.maximum(matches, 0)] if len(gt) else np.zeros(len(matches))
            labels = np.where(matches >= 0, gt_labels, 0).astype(np.int64)
            labels[matches == BETWEEN] = -1
            labels[matches == BELOW_LOW] = 0
            pos, neg = sample_balanced(
                labels, cfg.box_batch_per_image, cfg.box_positive_fraction, rng
            )
            idx = np.concatenate([pos, neg])
            out.append((props[idx], labels[idx], np.maximum(matches[idx], 0), len(pos)))
        return out

    def losses(self, features, proposals, targets, rng):
        cfg = self.cfg
        samples = self._sample(proposals, targets, rng)
        labels = np.concatenate([s[1] for s in samples])
        pooled = self._pool(features, [s[0] for s in samples], self.box_pool)
        class_logits, box_deltas = self.box_head(pooled)
        # No RoI at all (no proposals, no ground truth): a mean over nothing would be NaN.
        loss_cls = (
            F.cross_entropy(class_logits, labels) if len(labels) else (class_logits * 0).sum()
        )

        # Box regression: only foreground, only the deltas of the true class.
        fg = np.flatnonzero(labels > 0)
        reg_t = [self.coder.encode(t["boxes"][m[:n]].astype(np.float32), b[:n])
                 for (b, _, m, n), t in zip(samples, targets, strict=True)]  # fmt: skip
        if len(fg):
            cols = (labels[fg, None] * 4 + np.arange(4)).astype(np.int64)
            pred = box_deltas[fg[:, None], cols]
            target = np.concatenate(reg_t).astype(pred.dtype)
            loss_box = F.smooth_l1_loss(pred, target, beta=1 / 9, reduction="sum") / len(labels)
        else:
            loss_box = (box_deltas * 0).sum()

        # Masks: foreground proposals only (at most mask_batch_per_image of them, drawn at
        # random), target cut from the matched ground-truth mask.
        picks = [np.sort(rng.permutation(n)[: cfg.mask_batch_per_image]) for *_, n in samples]
        fg_boxes = [b[k] for (b, _, _, _), k in zip(samples, picks, strict=True)]
        fg_match = [m[k] for (_, _, m, _), k in zip(samples, picks, strict=True)]
        fg_labels = np.concatenate(
            [lab[k] for (_, lab, _, _), k in zip(samples, picks, strict=True)]
        )
        if len(fg):
            logits = self.mask_head(self._pool(features, fg_boxes, cfg.mask_pool))
            target = np.concatenate([
                mask_targets(t["masks"], m, b, cfg.mask_size)
                for b, m, t in zip(fg_boxes, fg_match, targets, strict=True)
            ])  # fmt: skip
            loss_mask = self.mask_loss(logits, fg_labels, target)
        else:
            loss_mask = (box_deltas * 0).sum()
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box, "loss_mask": loss_mask}

    def mask_loss(self, logits, labels, target):
        """sigmoid: mean BCE on the true class's channel only (classes do not compete);
        softmax: per-pixel cross-entropy over all classes (mask pixels → true class, rest → 0)."""
        P = len(labels)
        if self.cfg.mask_loss == "sigmoid":
            picked = logits[np.arange(P), labels]
            return F.binary_cross_entropy_with_logits(picked, target.astype(logits.dtype))
        classes = (target > 0.5) * labels[:, None, None]
        return F.cross_entropy(logits, classes.astype(np.int64))

    # ------------------------------------------------------------------ inference
    def detect(self, features, proposals, image_sizes):
        """Per image: boxes ``(D, 4)`` clipped to its own size (``image_sizes``: one ``(H, W)``
        per image, or one for all), labels ``(D,)``, scores ``(D,)`` and soft masks
        ``(D, 28, 28)`` for the predicted class."""
        cfg = self.cfg
        logits, deltas = self.box_head(self._pool(features, proposals, self.box_pool))
        scores = logits.softmax(axis=1).numpy()
        deltas = deltas.numpy()
        C = cfg.num_classes
        results, start = [], 0
        sizes = per_image_sizes(image_sizes, len(proposals))
        for props, image_size in zip(proposals, sizes, strict=True):
            k = len(props)
            s = scores[start : start + k]
            d = deltas[start : start + k].reshape(k * C, 4)
            boxes = self.coder.decode(d, np.repeat(props, C, axis=0)).reshape(k, C, 4)
            start += k
            boxes = F.clip_boxes_to_image(boxes.reshape(-1, 4), image_size).reshape(k, C, 4)
            # Every (proposal, foreground class) pair is a candidate detection.
            boxes, s = boxes[:, 1:].reshape(-1, 4), s[:, 1:].reshape(-1)
            labels = np.tile(np.arange(1, C), k)
            keep = np.flatnonzero(s > cfg.score_thresh)
            keep = keep[F.remove_small_boxes(boxes[keep], 1e-2)]
            boxes, s, labels = boxes[keep], s[keep], labels[keep]
            keep = F.batched_nms(boxes, s, labels, cfg.nms_thresh)[: cfg.detections_per_image]
            results.append({"boxes": boxes[keep].astype(np.float32), "scores": s[keep].astype(np.float32),
                            "labels": labels[keep].astype(np.int64)})  # fmt: skip
        self._predict_masks(features, results)
        return results

    def _predict_masks(self, features, results):
        cfg = self.cfg
        boxes = [r["boxes"] for r in results]
        if sum(len(b) for b in boxes) == 0:
            for r in results:
                r["mask_probs"] = np.zeros((0, cfg.mask_size, cfg.mask_size), np.float32)
            return
        logits = self.mask_head(self._pool(features, boxes, cfg.mask_pool))
        labels = np.concatenate([r["labels"] for r in results])
        rows = np.arange(len(labels))
        if cfg.mask_loss == "sigmoid":
            probs = logits.sigmoid().numpy()[rows, labels]
        else:
            # A per-pixel softmax classifies each pixel: the mask of class k is where k wins.
            # As a soft mask, 0.5 + (p_k − max_{j≠k} p_j) / 2 is ≥ 0.5 exactly there, so pasting
            # and thresholding treat both losses alike (p_k ≥ 0.5 alone would demand more of a
            # softmax over 4 classes than of a sigmoid).
            p = logits.softmax(axis=1).numpy()
            own = p[rows, labels]
            p[rows, labels] = -np.inf
            probs = 0.5 + 0.5 * (own - p.max(axis=1))
        start = 0
        for r in results:
            r["mask_probs"] = probs[start : start + len(r["labels"])]
            start += len(r["labels"])
