"""Paste 28×28 soft masks back into the image: bilinear resize into the box, threshold."""

import numpy as np

from ...autograd import no_grad
from ...ops.upsample import interpolate
from ...tensor import Tensor


def paste_masks(mask_probs, boxes, image_size, threshold=0.5):
    """``(D, M, M)`` soft masks and ``(D, 4)`` boxes → ``(D, H, W)`` bool masks.

    As torchvision: pad the mask by one zero pixel and grow the box by (M+2)/M, so the mask's
    border fades out instead of being cut; then resize bilinearly to the (integer) box and paste the
    part that lies inside the image.
    """
    H, W = image_size
    D = len(boxes)
    out = np.zeros((D, H, W), dtype=bool)
    if D == 0:
        return out
    M = mask_probs.shape[-1]
    padded = np.pad(mask_probs, ((0, 0), (1, 1), (1, 1)))
    scale = (M + 2) / M
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    hw, hh = (boxes[:, 2] - boxes[:, 0]) / 2 * scale, (boxes[:, 3] - boxes[:, 1]) / 2 * scale
    x0s, x1s = np.floor(cx - hw).astype(int), np.floor(cx + hw).astype(int)
    y0s, y1s = np.floor(cy - hh).astype(int), np.floor(cy + hh).astype(int)
    with no_grad():
        for i in range(D):
            w, h = max(x1s[i] - x0s[i] + 1, 1), max(y1s[i] - y0s[i] + 1, 1)
            m = interpolate(Tensor(padded[i][None, None].astype(np.float32)), size=(h, w),
                            mode="bilinear", align_corners=False).numpy()[0, 0]  # fmt: skip
            ya, yb = max(y0s[i], 0), min(y0s[i] + h, H)
            xa, xb = max(x0s[i], 0), min(x0s[i] + w, W)
            if ya < yb and xa < xb:
                out[i, ya:yb, xa:xb] = m[ya - y0s[i] : yb - y0s[i], xa - x0s[i] : xb - x0s[i]] >= threshold
    return out
