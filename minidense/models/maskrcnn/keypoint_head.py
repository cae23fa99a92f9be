"""Mask R-CNN's keypoint head (He et al., 2017, §5): K one-hot m×m maps per RoI.

"Given K keypoints, train the model to predict K m×m one-hot maps with cross-entropy losses over
m² outputs": each keypoint's map is a classification of *where* it is among the m² cells of its
RoI, trained against the one cell that holds the keypoint. A softmax over the cells makes the
cells compete, so the head must commit to one place (a regression of (x, y) would average
between two plausible corners and land between them), and a map keeps the spatial layout that
convolutions are good at.

Here m = 56, as in the paper: 14×14 pooled features → the mask head's layout (3×3 convs, a 2×
transposed conv to 28×28, a 1×1 conv to K maps) → 2× bilinear upsampling to 56×56. No new
kernel: RoIAlign, conv, transposed conv, interpolate and cross_entropy are the library's.

The paper's keypoint head pools from FPN, whose finest levels serve small objects. Our backbone
gives one coarse map (stride 16 or 32), on which a 30-pixel shape spans two cells: too coarse to
place a corner. So the branch pools the backbone's stride-4 stage too (``keypoint_fine_stride``)
and concatenates both: detail from the fine map, context from the coarse one (in the notebook's
setting keypoint AP rose from 2.7 to 24.9 with it).

Keypoint RoIs are the boxes scaled by ``keypoint_box_scale`` about their centres: the shapes'
keypoints lie on their outlines, at or just beyond the tight box around the visible pixels
(a corner's tip has no pixel of its own), and a map that ended at the box would cut them.
"""

import numpy as np

from ... import functional as F
from ... import nn
from .matching import match
from .roi_heads import MaskHead, boxes_on, pool_features


class KeypointHead(nn.Module):
    """Pooled ``(P, C, p, p)`` → ``(P, K, 4p, 4p)`` keypoint logits, one map per keypoint."""

    def __init__(self, in_channels, channels, num_convs, num_keypoints):
        super().__init__()
        self.body = MaskHead(in_channels, channels, num_convs, num_keypoints)

    def forward(self, pooled):
        return F.interpolate(
            self.body(pooled), scale_factor=2, mode="bilinear", align_corners=False
        )


def expand_boxes(boxes, scale):
    """``(N, 4)`` boxes scaled by ``scale`` about their centres (float32)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def keypoint_targets(keypoints, boxes, size):
    """The cell of each keypoint in its RoI's ``size``×``size`` map.

    ``keypoints (P, K, 3)`` rows ``(x, y, v)`` and ``boxes (P, 4)`` → ``index (P, K)`` int64 flat
    cells ``row·size + col`` and ``valid (P, K)`` bool: labelled (v > 0, COCO's "visible" in
    Detectron's sense: an occluded keypoint whose place is known counts) and inside the box.
    A keypoint on the box's right or bottom edge belongs to the last cell."""
    kp = np.asarray(keypoints, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    x1, y1 = boxes[:, 0:1], boxes[:, 1:2]
    w = np.maximum(boxes[:, 2:3] - x1, 1e-6)
    h = np.maximum(boxes[:, 3:4] - y1, 1e-6)
    u = (kp[:, :, 0] - x1) / w * size
    v = (kp[:, :, 1] - y1) / h * size
    valid = (kp[:, :, 2] > 0) & (u >= 0) & (u <= size) & (v >= 0) & (v <= size)
    col = np.clip(np.floor(u), 0, size - 1).astype(np.int64)
    row = np.clip(np.floor(v), 0, size - 1).astype(np.int64)
    return np.where(valid, row * size + col, 0), valid


def keypoint_loss(logits, index, valid):
    """Mean cross-entropy over the m² cells of every valid (RoI, keypoint) map.

    ``logits (P, K, m, m)`` Tensor, ``index``/``valid (P, K)`` from :func:`keypoint_targets`."""
    P, K, m, _ = logits.shape
    rows = np.flatnonzero(valid.ravel())
    if len(rows) == 0:  # nothing to learn from: a zero that keeps the graph
        return (logits * 0).sum()
    return F.cross_entropy(logits.reshape(P * K, m * m)[rows], index.ravel()[rows])


def decode_keypoints(logits, boxes):
    """``logits (D, K, m, m)`` array and the RoI ``boxes (D, 4)`` → ``(D, K, 3)`` float32 rows
    ``(x, y, score)``: the centre of each map's most likely cell in image pixels, and that
    cell's softmax probability."""
    logits = np.asarray(logits, dtype=np.float64)
    D, K, m, _ = logits.shape
    flat = logits.reshape(D, K, m * m)
    best = flat.argmax(axis=2)
    score = 1.0 / np.exp(flat - flat.max(axis=2, keepdims=True)).sum(axis=2)
    row, col = np.divmod(best, m)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 1, 4)
    x = boxes[:, :, 0] + (col + 0.5) * (boxes[:, :, 2] - boxes[:, :, 0]) / m
    y = boxes[:, :, 1] + (row + 0.5) * (boxes[:, :, 3] - boxes[:, :, 1]) / m
    return np.stack([x, y, score], axis=2).astype(np.float32)


def check_keypoints(targets, num_keypoints):
    """Each target's ``keypoints``: ``(K_i, num_keypoints, 3)`` finite numbers, one per box."""
    out = []
    for i, t in enumerate(targets):
        if "keypoints" not in t:
            raise ValueError(
                f"targets[{i}] has no 'keypoints' entry (this model has a keypoint head: "
                f"num_keypoints={num_keypoints})"
            )
        kp = t["keypoints"]
        kp = np.asarray(kp.numpy() if hasattr(kp, "numpy") else kp)
        want = (len(t["boxes"]), num_keypoints, 3)
        if kp.dtype.kind not in "biuf" or kp.shape != want or not np.isfinite(kp).all():
            raise ValueError(
                f"targets[{i}]['keypoints'] must be finite {want} rows (x, y, v), one row of "
                f"{num_keypoints} per box, got shape {kp.shape} dtype {kp.dtype}"
            )
        out.append(kp.astype(np.float32))
    return out


class KeypointBranch(nn.Module):
    """The keypoint branch beside the RoI heads: it samples its own foreground proposals
    (IoU ≥ ``box_fg_iou`` with a ground truth that has a keypoint in the RoI), so the box and mask
    heads draw exactly the samples they would draw without it."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.cfg = cfg
        stride = cfg.keypoint_fine_stride
        # Stage k of the backbone has stride 2^(k + 1) and widths[k] channels.
        self.fine_stage = int(np.log2(stride)) - 1 if stride else None
        fine_channels = cfg.widths[self.fine_stage] if stride else 0
        self.head = KeypointHead(
            in_channels + fine_channels, cfg.keypoint_channels, cfg.keypoint_convs,
            cfg.num_keypoints,
        )  # fmt: skip

    @property
    def map_size(self):
        return 4 * self.cfg.keypoint_pool

    def _logits(self, features, fine, boxes_per_image):
        cfg = self.cfg
        boxes = [expand_boxes(b, cfg.keypoint_box_scale) for b in boxes_per_image]
        pooled = pool_features(features, boxes, cfg.keypoint_pool, cfg)
        if fine is not None:  # fine detail beside the coarse map's context
            detail = F.roi_align(fine, boxes_on(boxes, fine.device), cfg.keypoint_pool,
                                 1.0 / cfg.keypoint_fine_stride, cfg.sampling_ratio, aligned=True)  # fmt: skip
            pooled = F.concat([pooled, detail], axis=1)
        return self.head(pooled)

    def losses(self, features, fine, proposals, targets, rng):
        """``{"loss_keypoint": ...}`` for one batch (``targets`` checked by the model)."""
        cfg, m = self.cfg, self.map_size
        keypoints = check_keypoints(targets, cfg.num_keypoints)
        boxes, indices, valids = [], [], []
        for props, t, kp in zip(proposals, targets, keypoints, strict=True):
            gt = t["boxes"].astype(np.float32)
            props = np.concatenate([props, gt]) if len(props) else gt
            matches = match(F.box_iou(gt, props), cfg.box_fg_iou, cfg.box_bg_iou)
            fg = np.flatnonzero(matches >= 0)
            index, valid = keypoint_targets(
                kp[matches[fg]], expand_boxes(props[fg], cfg.keypoint_box_scale), m
            )
            useful = np.flatnonzero(valid.any(axis=1))
            pick = np.sort(rng.permutation(useful)[: cfg.keypoint_batch_per_image])
            boxes.append(props[fg[pick]])
            indices.append(index[pick])
            valids.append(valid[pick])
        if sum(len(b) for b in boxes) == 0:
            return {"loss_keypoint": (features * 0).sum()}
        logits = self._logits(features, fine, boxes)
        return {
            "loss_keypoint": keypoint_loss(logits, np.concatenate(indices), np.concatenate(valids))
        }

    def predict(self, features, fine, results):
        """Add ``keypoints (D, K, 3)`` rows ``(x, y, score)`` to each image's detections."""
        boxes = [r["boxes"] for r in results]
        if sum(len(b) for b in boxes) == 0:
            for r in results:
                r["keypoints"] = np.zeros((0, self.cfg.num_keypoints, 3), np.float32)
            return
        logits = self._logits(features, fine, boxes).numpy()
        start = 0
        for r, b in zip(results, boxes, strict=True):
            expanded = expand_boxes(b, self.cfg.keypoint_box_scale)
            r["keypoints"] = decode_keypoints(logits[start : start + len(b)], expanded)
            start += len(b)
