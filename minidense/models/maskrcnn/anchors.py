"""Anchor boxes: every feature cell gets one box per (size, aspect ratio), in image pixels."""

import numpy as np


def base_anchors(sizes, ratios):
    """(A, 4) boxes centred on (0, 0): for ratio r = h/w, w = size/√r and h = size·√r, rounded
    as torchvision does so that anchors sit on whole pixels."""
    ratios = np.asarray(ratios, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    h_ratio = np.sqrt(ratios)
    w_ratio = 1 / h_ratio
    ws = (w_ratio[:, None] * sizes[None, :]).reshape(-1)
    hs = (h_ratio[:, None] * sizes[None, :]).reshape(-1)
    return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2)


def grid_anchors(feature_size, stride, sizes, ratios):
    """Anchors for a ``(H, W)`` feature map of the given stride: ``(H·W·A, 4)`` float32, ordered
    cell by cell (row-major), A anchors per cell — the order the RPN head's outputs use."""
    H, W = feature_size
    cell = base_anchors(sizes, ratios)
    ys, xs = np.meshgrid(np.arange(H) * stride, np.arange(W) * stride, indexing="ij")
    shifts = np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4)
    return (shifts + cell[None]).reshape(-1, 4).astype(np.float32)
