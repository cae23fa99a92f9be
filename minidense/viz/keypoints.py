"""Keypoints drawn on images: points joined by each class's skeleton lines."""

import numpy as np

from ..data.keypoints import SKELETONS


def draw_keypoints(ax, keypoints, labels, colours, flags=True, skeletons=SKELETONS):
    """Draw ``keypoints (K, P, 3)`` of K objects with class ``labels (K,)`` on ``ax``.

    ``flags=True`` (ground truth): the third column is COCO's visibility, 2 is drawn filled,
    1 (occluded) hollow, 0 not at all. ``flags=False`` (predictions): the third column is a
    score, and every keypoint the class has is drawn. ``skeletons`` maps a label to the pairs of
    keypoint indices joined by lines (a class without one gets points only). ``colours``: one RGB
    per object. Pixel ``i`` spans ``[i, i + 1)``; imshow centres it on ``i``, hence the −½."""
    for kp, lab, colour in zip(np.asarray(keypoints, dtype=np.float64), labels, colours,
                               strict=True):  # fmt: skip
        pairs = skeletons.get(int(lab), ())
        used = sorted({i for pair in pairs for i in pair}) or list(range(len(kp)))
        shown = [i for i in used if kp[i, 2] > 0] if flags else used
        x, y = kp[:, 0] - 0.5, kp[:, 1] - 0.5
        for a, b in pairs:
            if a in shown and b in shown:
                ax.plot([x[a], x[b]], [y[a], y[b]], "-", color="white", lw=2.2, alpha=0.8)
                ax.plot([x[a], x[b]], [y[a], y[b]], "-", color=colour, lw=1.2)
        for i in shown:
            hidden = flags and kp[i, 2] < 2
            ax.plot(x[i], y[i], "o", ms=5, mew=1.2, mec="white" if hidden else "black",
                    mfc="none" if hidden else colour)  # fmt: skip
