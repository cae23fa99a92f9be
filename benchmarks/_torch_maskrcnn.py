"""The same Mask R-CNN as minidense's, built from torch and torchvision parts: what
bench_maskrcnn.py times beside ours (imported only where torch and torchvision are).

``MaskRCNNTwin(cfg, roi_align=...)`` mirrors ``minidense.models.maskrcnn.MaskRCNN(cfg)`` layer for
layer, with the same parameter names (``copy_weights`` copies ours over and refuses any mismatch),
the same anchors, matching thresholds, sampling counts, box coding, mask targets and losses with
their normalisations. It is written as a strong PyTorch user would write it: torchvision.ops
(``nms``, ``box_iou``, ``roi_align``, ...), torchvision's ``BoxCoder`` and
``BalancedPositiveNegativeSampler`` (both the same formulas as ours), and batched torch ops.
The matcher is written here: torchvision's ``Matcher`` differs from ours in one corner (it
matches a ground truth that overlaps no anchor at all to every anchor with IoU 0).

Two RoIAlign builds: ``"torchvision"`` is ``torchvision.ops.roi_align`` (its CPU backward is a
serial loop), ``"matmul"`` is :func:`matmul_roi_align`, the same numbers as one matrix product
per image, whose backward is a parallel matrix product too.
"""

import torch
from torch import nn
from torch.nn import functional as F
from torchvision import ops
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as Sampler
from torchvision.models.detection._utils import BoxCoder

ROI_ALIGNS = ("torchvision", "matmul")
BELOW_LOW, BETWEEN = -1, -2  # as minidense.models.maskrcnn.matching


def check_config(cfg):
    """The twin mirrors the configuration train-maskrcnn trains by default (RoIAlign, conv
    heads, sigmoid masks, no keypoints); refuse the knobs it does not build."""
    built = {"pooler": "roialign", "c4_head": False, "mask_loss": "sigmoid", "num_keypoints": 0,
             "c5_blocks": 0}  # fmt: skip
    for name, value in built.items():
        if getattr(cfg, name) != value:
            raise ValueError(
                f"the torch twin builds {name}={value!r} only, got {getattr(cfg, name)!r}"
            )
    if cfg.sampling_ratio <= 0:  # the matrix product needs one grid for every RoI
        raise ValueError(f"the torch twin needs sampling_ratio > 0, got {cfg.sampling_ratio}")


# ------------------------------------------------------------------------------ RoIAlign
def _axis_weights(start, end, bins, grid, length, aligned):
    """RoIAlign's weights along one axis: ``(K, bins, length)``, row ``p`` of RoI ``k`` the
    average over the bin's ``grid`` samples of their two linear-interpolation weights, zero for
    a sample outside ``[-1, length]`` (the DESIGN's bilinear rule, one axis at a time)."""
    size = end - start
    if not aligned:  # legacy RoIAlign makes every RoI at least one cell
        size = size.clamp(min=1.0)
    step = (size / bins)[:, None, None]
    p = torch.arange(bins, dtype=start.dtype)[None, :, None]
    s = (torch.arange(grid, dtype=start.dtype) + 0.5)[None, None, :]
    pos = start[:, None, None] + p * step + s * step / grid  # (K, bins, grid)
    inside = (pos >= -1.0) & (pos <= length)
    pos = pos.clamp(min=0.0)
    low = pos.floor()
    last = low >= length - 1  # at the far edge both neighbours are the last cell
    low = torch.where(last, torch.full_like(low, length - 1), low)
    high = torch.where(last, low, low + 1)
    frac = torch.where(last, torch.zeros_like(pos), pos - low)
    cells = torch.arange(length, dtype=start.dtype)
    near = (1 - frac)[..., None] * (low[..., None] == cells)
    far = frac[..., None] * (high[..., None] == cells)
    return ((near + far) * inside[..., None]).sum(2) / grid


def matmul_roi_align(input, boxes, output_size, spatial_scale, sampling_ratio, aligned=False):
    """``torchvision.ops.roi_align`` (same arguments, ``sampling_ratio > 0``) as an exact matrix
    product: a sample's bilinear weight is a product of a y and an x weight, so RoI k's pooled
    ``(C, P, P)`` is ``Wmat_k @ features`` with ``Wmat_k (P·P, H·W)`` the outer product of its
    per-axis weights. One matmul per image, forward and backward (both parallel BLAS), where
    torchvision's CPU backward scatters sample by sample in one thread.

    input ``(N, C, H, W)``; boxes ``(K, 5)`` rows ``(image, x1, y1, x2, y2)`` or a list of
    ``(K_i, 4)``; returns ``(K, C, P, P)``."""
    if sampling_ratio <= 0:
        raise ValueError(f"matmul_roi_align: sampling_ratio must be > 0, got {sampling_ratio}")
    rois = (
        boxes if isinstance(boxes, torch.Tensor) else ops._utils.convert_boxes_to_roi_format(boxes)
    )
    N, C, H, W = input.shape
    P = output_size
    K = len(rois)
    if K == 0:
        return input.new_zeros((0, C, P, P))
    b = rois[:, 1:].to(input.dtype) * spatial_scale - (0.5 if aligned else 0.0)
    wy = _axis_weights(b[:, 1], b[:, 3], P, sampling_ratio, H, aligned)  # (K, P, H)
    wx = _axis_weights(b[:, 0], b[:, 2], P, sampling_ratio, W, aligned)  # (K, P, W)
    wmat = (wy[:, :, None, :, None] * wx[:, None, :, None, :]).reshape(K, P * P, H * W)
    image = rois[:, 0].long()
    flat = input.reshape(N, C, H * W)
    rows, parts = [], []
    for n in range(N):
        k = torch.nonzero(image == n).squeeze(1)
        if len(k):
            rows.append(k)  # (K_n·P·P, H·W) @ (H·W, C): one matmul for the image's RoIs
            parts.append((wmat[k].reshape(-1, H * W) @ flat[n].T).reshape(len(k), P * P, C))
    pooled = torch.cat(parts)[torch.argsort(torch.cat(rows))]  # back in the RoIs' order
    return pooled.permute(0, 2, 1).reshape(K, C, P, P)


# ------------------------------------------------------------------------------ modules
def _conv_bn_relu(c_in, c_out, stride):
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class Backbone(nn.Module):
    """Per stage: stride-2 3×3 conv → BN → ReLU → 3×3 conv → BN → ReLU (ours, index for index)."""

    def __init__(self, cfg):
        super().__init__()
        stages, c = [], cfg.in_channels
        for w in cfg.widths[: cfg.num_stages]:
            stages.append(nn.Sequential(*_conv_bn_relu(c, w, 2), *_conv_bn_relu(w, w, 1)))
            c = w
        self.stages = nn.Sequential(*stages)
        self.out_channels = c

    def forward(self, x):
        return self.stages(x)


class RPNHead(nn.Module):
    def __init__(self, in_channels, channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)

    def forward(self, x):
        h = F.relu(self.conv(x), inplace=True)
        return self.cls_logits(h), self.bbox_pred(h)


def match(iou, high, low, allow_low_quality=False):
    """minidense's ``matching.match`` in torch: for each column of ``iou (G, M)`` its best ground
    truth, or BELOW_LOW / BETWEEN; with ``allow_low_quality``, each ground truth also keeps the
    candidates reaching its highest IoU, if that IoU is > 0."""
    G, M = iou.shape
    if G == 0 or M == 0:
        return torch.full((M,), BELOW_LOW, dtype=torch.int64)
    best_iou, best = iou.max(0)
    matches = best.clone()
    matches[best_iou < low] = BELOW_LOW
    matches[(best_iou >= low) & (best_iou < high)] = BETWEEN
    if allow_low_quality:
        best_for_gt = iou.max(1, keepdim=True).values
        cand = torch.nonzero((iou == best_for_gt) & (best_for_gt > 0))[:, 1]
        matches[cand] = best[cand]
    return matches


class RPN(nn.Module):
    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg
        A = len(cfg.anchor_sizes) * len(cfg.anchor_ratios)  # anchors per cell
        self.head = RPNHead(in_channels, cfg.rpn_channels, A)
        self.coder = BoxCoder((1.0, 1.0, 1.0, 1.0), cfg.bbox_xform_clip)
        self.sampler = Sampler(cfg.rpn_batch_per_image, cfg.rpn_positive_fraction)
        self._anchors = {}

    def anchors(self, H, W):
        """``(H·W·A, 4)``: ours (anchors.py) — torchvision's AnchorGenerator's rounding and order."""
        if (H, W) not in self._anchors:
            cfg = self.cfg
            sizes = torch.tensor(cfg.anchor_sizes, dtype=torch.float64)
            h_ratio = torch.tensor(cfg.anchor_ratios, dtype=torch.float64).sqrt()
            ws = (sizes[None, :] / h_ratio[:, None]).reshape(-1)
            hs = (sizes[None, :] * h_ratio[:, None]).reshape(-1)
            cell = (torch.stack([-ws, -hs, ws, hs], 1) / 2).round()
            ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
            ys, xs = ys * cfg.stride, xs * cfg.stride
            shifts = torch.stack([xs, ys, xs, ys], -1).reshape(-1, 1, 4)
            self._anchors[H, W] = (shifts + cell[None]).reshape(-1, 4).float()
        return self._anchors[H, W]

    def forward(self, features, sizes, targets):
        """(proposals: one ``(P_i, 4)`` tensor per image, the RPN's losses)."""
        objectness, deltas = self.head(features)
        N, A, H, W = objectness.shape  # A anchors per cell
        obj = objectness.permute(0, 2, 3, 1).reshape(N, H * W * A)
        d = deltas.reshape(N, A, 4, H, W).permute(0, 3, 4, 1, 2).reshape(N, H * W * A, 4)
        anchors = self.anchors(H, W)
        with torch.no_grad():
            proposals = self.propose(obj.detach(), d.detach(), anchors, sizes)
        return proposals, self.losses(obj, d, anchors, targets)

    def propose(self, obj, deltas, anchors, sizes):
        cfg = self.cfg
        pre = cfg.rpn_pre_nms_top_n_train if self.training else cfg.rpn_pre_nms_top_n_test
        post = cfg.rpn_post_nms_top_n_train if self.training else cfg.rpn_post_nms_top_n_test
        out = []
        for scores, d, size in zip(obj, deltas, sizes, strict=True):
            s, top = scores.topk(min(pre, len(scores)))
            boxes = ops.clip_boxes_to_image(self.coder.decode_single(d[top], anchors[top]), size)
            keep = ops.remove_small_boxes(boxes, cfg.rpn_min_size)
            boxes, s = boxes[keep], s[keep]
            out.append(boxes[ops.nms(boxes, s, cfg.rpn_nms)[:post]])
        return out

    def losses(self, obj, deltas, anchors, targets):
        """BCE on the sampled anchors; smooth L1 (β = 1/9) on the positives' deltas, summed and
        divided by the number sampled."""
        cfg = self.cfg
        M = len(anchors)
        labels, matched = [], []
        for t in targets:
            matches = match(ops.box_iou(t["boxes"], anchors), cfg.rpn_fg_iou, cfg.rpn_bg_iou, True)
            lab = (matches >= 0).to(obj.dtype)
            lab[matches == BETWEEN] = -1
            labels.append(lab)
            matched.append(matches)
        pos_masks, neg_masks = self.sampler(labels)
        sampled, pos_idx, reg_targets = [], [], []
        picked = zip(pos_masks, neg_masks, matched, targets, strict=True)
        for i, (pos_m, neg_m, m, t) in enumerate(picked):
            pos, neg = torch.where(pos_m)[0], torch.where(neg_m)[0]
            sampled.append(torch.cat([pos, neg]) + i * M)
            pos_idx.append(pos + i * M)
            reg_targets.append(self.coder.encode_single(t["boxes"][m[pos]], anchors[pos]))
        sampled, pos_idx = torch.cat(sampled), torch.cat(pos_idx)
        logits, labels = obj.reshape(-1)[sampled], torch.cat(labels)[sampled]
        loss_obj = F.binary_cross_entropy_with_logits(logits, labels)
        if len(pos_idx):
            pred = deltas.reshape(-1, 4)[pos_idx]
            loss_box = F.smooth_l1_loss(pred, torch.cat(reg_targets), beta=1 / 9, reduction="sum")
            loss_box = loss_box / max(len(sampled), 1)
        else:
            loss_box = deltas.sum() * 0
        return {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}


class BoxHead(nn.Module):
    def __init__(self, in_channels, pool, fc, num_classes):
        super().__init__()
        self.fc6 = nn.Linear(in_channels * pool * pool, fc)
        self.fc7 = nn.Linear(fc, fc)
        self.cls_score = nn.Linear(fc, num_classes)
        self.bbox_pred = nn.Linear(fc, 4 * num_classes)

    def forward(self, pooled):
        h = F.relu(self.fc7(F.relu(self.fc6(pooled.flatten(1)), inplace=True)), inplace=True)
        return self.cls_score(h), self.bbox_pred(h)


class MaskHead(nn.Module):
    def __init__(self, in_channels, channels, num_convs, num_classes):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(True)]
            c = channels
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.logits = nn.Conv2d(channels, num_classes, 1)

    def forward(self, pooled):
        return self.logits(F.relu(self.upsample(self.convs(pooled)), inplace=True))


class RoIHeads(nn.Module):
    def __init__(self, cfg, in_channels, roi_align):
        super().__init__()
        self.cfg = cfg
        self.box_head = BoxHead(in_channels, cfg.box_pool, cfg.box_fc, cfg.num_classes)
        self.mask_head = MaskHead(in_channels, cfg.mask_channels, cfg.mask_convs, cfg.num_classes)
        self.coder = BoxCoder(cfg.box_weights, cfg.bbox_xform_clip)
        self.sampler = Sampler(cfg.box_batch_per_image, cfg.box_positive_fraction)
        self.roi_align = ops.roi_align if roi_align == "torchvision" else matmul_roi_align

    def pool(self, features, boxes, size):
        """RoIAlign, aligned=True (Detectron2's, as ours), of one ``(K_i, 4)`` tensor per image."""
        return self.roi_align(
            features, boxes, size, 1.0 / self.cfg.stride, self.cfg.sampling_ratio, True
        )

    def sample(self, proposals, targets):
        """Per image ``(boxes, labels, matched ground truth, positives)``: the ground truth joins
        the proposals, IoU ≥ box_fg_iou is foreground, and the sampler picks positives first."""
        cfg = self.cfg
        all_props, all_labels, all_matches = [], [], []
        for props, t in zip(proposals, targets, strict=True):
            gt = t["boxes"]
            props = torch.cat([props, gt])
            matches = match(ops.box_iou(gt, props), cfg.box_fg_iou, cfg.box_bg_iou)
            labels = t["labels"][matches.clamp(min=0)] if len(gt) else torch.zeros_like(matches)
            labels = torch.where(matches >= 0, labels, 0)
            labels[matches == BETWEEN] = -1
            all_props.append(props)
            all_labels.append(labels)
            all_matches.append(matches.clamp(min=0))
        out = []
        pos_masks, neg_masks = self.sampler(all_labels)
        picked = zip(all_props, all_labels, all_matches, pos_masks, neg_masks, strict=True)
        for props, labels, m, pos_m, neg_m in picked:
            pos = torch.where(pos_m)[0]
            idx = torch.cat([pos, torch.where(neg_m)[0]])
            out.append((props[idx], labels[idx], m[idx], len(pos)))
        return out

    def losses(self, features, proposals, targets):
        cfg = self.cfg
        samples = self.sample(proposals, targets)
        labels = torch.cat([s[1] for s in samples])
        pooled = self.pool(features, [s[0] for s in samples], cfg.box_pool)
        class_logits, box_deltas = self.box_head(pooled)
        loss_cls = F.cross_entropy(class_logits, labels)
        fg = torch.where(labels > 0)[0]
        if len(fg):  # only the true class's deltas, summed and divided by all sampled RoIs
            reg_t = [self.coder.encode_single(t["boxes"][m[:n]], b[:n])
                     for (b, _, m, n), t in zip(samples, targets, strict=True)]  # fmt: skip
            pred = box_deltas.reshape(len(labels), -1, 4)[fg, labels[fg]]
            loss_box = F.smooth_l1_loss(pred, torch.cat(reg_t), beta=1 / 9, reduction="sum")
            loss_box = loss_box / len(labels)
        else:
            loss_box = box_deltas.sum() * 0
        fg_boxes, fg_labels, target = [], [], []
        for (b, lab, m, n), t in zip(samples, targets, strict=True):
            k = torch.randperm(n)[: cfg.mask_batch_per_image].sort().values  # foreground, at random
            fg_boxes.append(b[k])
            fg_labels.append(lab[k])
            target.append(mask_targets(t["masks"], m[k], b[k], cfg.mask_size))
        if len(fg):
            logits = self.mask_head(self.pool(features, fg_boxes, cfg.mask_pool))
            fg_labels, target = torch.cat(fg_labels), torch.cat(target)
            picked = logits[torch.arange(len(fg_labels)), fg_labels]
            loss_mask = F.binary_cross_entropy_with_logits(picked, target)
        else:
            loss_mask = box_deltas.sum() * 0
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box, "loss_mask": loss_mask}


def mask_targets(gt_masks, matched, boxes, size):
    """Ours (roi_heads.mask_targets): each matched float mask ``(G, H, W)`` cut to its box by
    RoIAlign (aligned, 2 samples, no gradient) and thresholded at 0.5 → ``(P, size, size)``."""
    rois = torch.cat([matched[:, None].to(boxes.dtype), boxes], 1)
    cut = ops.roi_align(gt_masks[:, None], rois, size, 1.0, sampling_ratio=2, aligned=True)[:, 0]
    return (cut >= 0.5).to(gt_masks.dtype)


class MaskRCNNTwin(nn.Module):
    """``twin(images (N, 3, H, W) in [0, 1], targets)`` → the ``loss_*`` dict of ours; targets: per
    image ``boxes (K, 4)`` float, ``labels (K,)`` int64, ``masks (K, H, W)`` float (:func:`batch`)."""

    def __init__(self, cfg, roi_align="matmul"):
        super().__init__()
        check_config(cfg)
        if roi_align not in ROI_ALIGNS:
            raise ValueError(f"roi_align must be one of {ROI_ALIGNS}, got {roi_align!r}")
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.rpn = RPN(cfg, self.backbone.out_channels)
        self.roi_heads = RoIHeads(cfg, self.backbone.out_channels, roi_align)

    def features(self, images):
        """Centred (x − 0.5) and zero-padded to a multiple of the stride, as ours."""
        H, W = images.shape[2:]
        s = self.cfg.stride
        x = F.pad(images - 0.5, (0, -W % s, 0, -H % s))
        return self.backbone(x), [(H, W)] * len(images)

    def forward(self, images, targets, mark=None):
        """The training losses; ``mark(stage)`` after the backbone, the RPN and the RoI heads."""
        mark = mark or (lambda stage: None)
        features, sizes = self.features(images)
        mark("backbone")
        proposals, losses = self.rpn(features, sizes, targets)
        mark("rpn")
        losses.update(self.roi_heads.losses(features, proposals, targets))
        mark("roi heads")
        return losses


def batch(images, targets):
    """A minidense batch (NumPy images and target dicts) as the twin takes it (the targets
    copied: the dataset's cached arrays are read-only)."""
    kinds = {"boxes": torch.float32, "labels": torch.int64, "masks": torch.float32}
    return torch.from_numpy(images), [
        {k: torch.tensor(t[k], dtype=kind) for k, kind in kinds.items()} for t in targets
    ]


def copy_weights(model, twin):
    """Copy minidense ``model``'s parameters and batch-norm statistics into ``twin``, name for
    name; a name on one side only, or a shape that differs, is a ValueError."""
    ours = model.state_dict()
    theirs = {k: v for k, v in twin.state_dict().items() if not k.endswith("num_batches_tracked")}
    shapes = [(k, v.shape, tuple(theirs[k].shape)) for k, v in ours.items() if k in theirs]
    if set(ours) != set(theirs) or any(a != b for _, a, b in shapes):
        raise ValueError(
            f"copy_weights: the models differ; only in minidense: {sorted(set(ours) - set(theirs))}, "
            f"only in the twin: {sorted(set(theirs) - set(ours))}, shapes (name, minidense, twin) "
            f"that differ: {[s for s in shapes if s[1] != s[2]]}"
        )
    with torch.no_grad():
        for name, value in ours.items():
            theirs[name].copy_(torch.from_numpy(value))
    return twin
