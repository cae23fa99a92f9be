"""Paste 28×28 soft masks back into the image: sample each pixel centre bilinearly, threshold."""

import numpy as np


def _axis_weights(coords, n):
    """Left neighbour index and weight of the right one, for bilinear sampling on ``n`` cells."""
    c = np.clip(coords, 0, n - 1)
    i0 = np.minimum(np.floor(c).astype(np.int64), n - 2)
    return i0, c - i0


def paste_masks(mask_probs, boxes, image_size, threshold=0.5):
    """``(D, M, M)`` soft masks and ``(D, 4)`` boxes → ``(D, H, W)`` bool masks.

    Each image pixel inside a box samples the mask at its centre: pixel x maps to mask coordinate
    u = (x + ½ − x1)/(x2 − x1)·M − ½. The mask is padded with a ring of zeros, so beyond its
    border it fades out instead of being cut (Detectron2's paste; torchvision's older paste
    resizes to the box plus one pixel and paints a pixel too many on small boxes).
    """
    H, W = image_size
    D = len(boxes)
    out = np.zeros((D, H, W), dtype=bool)
    if D == 0:
        return out
    M = mask_probs.shape[-1]
    padded = np.pad(np.asarray(mask_probs, dtype=np.float64), ((0, 0), (1, 1), (1, 1)))
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64)):
        xa, xb = max(int(np.floor(x1)), 0), min(int(np.ceil(x2)), W)
        ya, yb = max(int(np.floor(y1)), 0), min(int(np.ceil(y2)), H)
        if xa >= xb or ya >= yb:
            continue
        # +1: coordinates in the padded mask.
        u = (np.arange(xa, xb) + 0.5 - x1) / max(x2 - x1, 1e-6) * M + 0.5
        v = (np.arange(ya, yb) + 0.5 - y1) / max(y2 - y1, 1e-6) * M + 0.5
        ix, wx = _axis_weights(u, M + 2)
        iy, wy = _axis_weights(v, M + 2)
        p = padded[i]
        top = p[iy][:, ix] * (1 - wx) + p[iy][:, ix + 1] * wx
        bottom = p[iy + 1][:, ix] * (1 - wx) + p[iy + 1][:, ix + 1] * wx
        out[i, ya:yb, xa:xb] = (top * (1 - wy[:, None]) + bottom * wy[:, None]) >= threshold
    return out
