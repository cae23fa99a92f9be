"""Pictures of detections: boxes, labels, scores, masks and keypoints drawn on images."""

import numpy as np

from .keypoints import draw_keypoints
from .segmentation import (
    PALETTE,
    _check_images,
    _check_same_length,
    _closed_on_error,
    _figure,
    _int_labels,
    _save,
    to_rgb,
)


def draw_instances(ax, image, boxes, labels, masks=None, scores=None, class_names=None, alpha=0.45,
                   keypoints=None):  # fmt: skip
    """Draw one image's instances on a matplotlib axis.

    ``labels`` are class indices (whole-number floats are accepted, as some models return them).
    ``keypoints (K, P, 3)``, if given, are drawn with their class's skeleton: a ground truth's
    (no ``scores``) by visibility, a prediction's all (:func:`~minidense.viz.keypoints.draw_keypoints`).
    """
    from matplotlib.patches import Rectangle

    labels = _int_labels(labels)
    rgb = to_rgb(image).copy()
    if masks is not None:
        for m, lab in zip(masks, labels, strict=True):
            m = np.asarray(m, dtype=bool)
            rgb[m] = rgb[m] * (1 - alpha) + PALETTE[1 + lab % (len(PALETTE) - 1)] * alpha
    ax.imshow(rgb)
    for k, (box, lab) in enumerate(zip(boxes, labels, strict=True)):
        colour = PALETTE[1 + lab % (len(PALETTE) - 1)]
        x1, y1, x2, y2 = box
        ax.add_patch(
            Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.5, ec=colour)
        )
        name = class_names[lab] if class_names is not None else str(lab)
        text = name if scores is None else f"{name} {scores[k]:.2f}"
        ax.text(x1, y1 - 1, text, color="white", fontsize=7, va="bottom",
                bbox=dict(facecolor=colour, alpha=0.8, pad=1, lw=0))  # fmt: skip
    if keypoints is not None:
        colours = [PALETTE[1 + lab % (len(PALETTE) - 1)] for lab in labels]
        draw_keypoints(ax, keypoints, labels, colours, flags=scores is None)
    ax.set_axis_off()


def plot_detections(images, predictions, targets=None, class_names=None, path=None,
                    score_thresh=0.5):  # fmt: skip
    """One row per image: ground truth (if given) and predictions side by side, with their
    keypoints when the dicts hold ``keypoints``.

    Only predictions scoring at least ``score_thresh`` are drawn: the model keeps candidates down
    to 0.05 for AP, which would bury the picture (0 draws them all).
    """
    if not 0 <= score_thresh <= 1:
        raise ValueError(f"score_thresh must be in [0, 1], got {score_thresh!r}")
    n = len(images)
    _check_images(n)
    _check_same_length(n, predictions=predictions)
    if targets is not None:
        _check_same_length(n, targets=targets)
    cols = 2 if targets is not None else 1
    fig, axes = _figure(n, cols, scale=3)
    with _closed_on_error(fig):
        for i, image in enumerate(images):
            p = predictions[i]
            if p.get("scores") is not None:
                keep = np.asarray(p["scores"]) >= score_thresh
                per_detection = ("boxes", "labels", "masks", "scores", "keypoints")
                p = {k: (np.asarray(v)[keep] if k in per_detection else v)
                     for k, v in p.items()}  # fmt: skip
            if targets is not None:
                t = targets[i]
                draw_instances(axes[i, 0], image, t["boxes"], t["labels"], t.get("masks"),
                               class_names=class_names, keypoints=t.get("keypoints"))  # fmt: skip
            draw_instances(axes[i, cols - 1], image, p["boxes"], p["labels"], p.get("masks"),
                           p.get("scores"), class_names, keypoints=p.get("keypoints"))  # fmt: skip
        if targets is not None:
            axes[0, 0].set_title("ground truth")
        axes[0, cols - 1].set_title("prediction")
        fig.tight_layout()
        return _save(fig, path)
