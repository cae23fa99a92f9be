"""Keypoints of the procedural shapes: where they are, in which order, and whether they can be seen.

Every shape has up to ``NUM_KEYPOINTS = 4`` keypoints, exact points of its outline:

- a **square**: its four corners;
- a **circle**: its four extreme points (top, right, bottom, left);
- a **triangle**: its three corners (the fourth slot stays empty).

They are ordered by one rule, the same for every class: **clockwise, starting from straight up**
(12 o'clock) around their centroid. A square's corners therefore come as top-right, bottom-right,
bottom-left, top-left; a circle's as top, right, bottom, left. Because the order is a rule about
positions, a mirrored sample is re-ordered by the same rule (:func:`flip_keypoints`), which is
what the data loader's flips do.

Each keypoint is a row ``(x, y, v)`` in pixels (pixel ``i`` spans ``[i, i + 1)``), with COCO's
visibility flag ``v``:

- ``2``: labelled and visible;
- ``1``: labelled but not visible — hidden by a shape drawn later, or outside the image; its
  position is still known (a COCO annotator marks an occluded joint the same way);
- ``0``: not labelled: the slot is empty (a triangle's fourth), stored as ``(0, 0, 0)``.

A keypoint is visible when it lies in the image and at least half of the shape's own pixels
within ``VISIBILITY_RADIUS`` pixels of it are still in view (a corner's tip may have no pixel of its
own, and an occluder that covers a corner's neighbourhood hides it).
"""

from __future__ import annotations

import numpy as np

from .shapes import Shape, ShapesInstances, masks_to_boxes, shape_mask

NUM_KEYPOINTS = 4
KEYPOINT_NAMES = {
    "square": ("top-right", "bottom-right", "bottom-left", "top-left"),
    "circle": ("top", "right", "bottom", "left"),
    "triangle": ("first corner", "second corner", "third corner"),
}
# Lines drawn between keypoints (by index, after ordering), per class label (1 square, 2 circle,
# 3 triangle): the outline of squares and triangles, a circle's two diameters.
SKELETONS = {
    1: ((0, 1), (1, 2), (2, 3), (3, 0)),
    2: ((0, 2), (1, 3)),
    3: ((0, 1), (1, 2), (2, 0)),
}
VISIBILITY_RADIUS = 2.5
# Keypoints a tiny rounding error away from 12 o'clock (a circle's top, whose centroid is
# computed) must still sort first, not last: angles are shifted by this much before the wrap.
_ANGLE_TOLERANCE = 1e-6


def shape_keypoints(shape: Shape) -> np.ndarray:
    """The exact keypoints of ``shape`` as ``(n, 2)`` float64 ``(x, y)``, in no particular order
    (n = 4 for squares and circles, 3 for triangles)."""
    if not isinstance(shape, Shape):
        raise TypeError(f"shape must be a Shape, got {type(shape).__name__}")
    cx, cy, r = shape.cx, shape.cy, shape.radius
    if shape.kind == "square":
        return np.array([[cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r], [cx - r, cy - r]])
    if shape.kind == "circle":
        return np.array([[cx, cy - r], [cx + r, cy], [cx, cy + r], [cx - r, cy]])
    # The vertices shape_mask draws: angle + 0, 120 and 240 degrees on the circumcircle.
    t = shape.angle + np.array([0.0, 2.0, 4.0]) * np.pi / 3.0
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def clockwise_order(points: np.ndarray) -> np.ndarray:
    """Indices that order ``points (n, 2)`` clockwise on the screen (y points down), starting
    from straight up, around their centroid."""
    points = np.asarray(points, dtype=np.float64)
    d = points - points.mean(axis=0)
    # atan2(dx, -dy): 0 straight up, pi/2 to the right, pi straight down (y grows downwards).
    angle = (np.arctan2(d[:, 0], -d[:, 1]) + _ANGLE_TOLERANCE) % (2 * np.pi)
    return np.argsort(angle, kind="stable")


def keypoint_visibility(points, shape_index, owner, full_mask, radius=VISIBILITY_RADIUS):
    """COCO flags ``(n,)`` int: 2 where a keypoint of shape ``shape_index`` is visible, else 1.

    ``owner (H, W)`` says which shape is seen at each pixel (from :func:`render`), ``full_mask``
    is the shape's unoccluded mask. A keypoint is visible when it lies in the image and at least
    half of the shape's own pixels whose centres lie within ``radius`` of it are in view."""
    H, W = owner.shape
    flags = np.ones(len(points), dtype=np.int64)
    for i, (x, y) in enumerate(points):
        if not (0 <= x <= W and 0 <= y <= H):
            continue
        c0, c1 = max(int(np.floor(x - radius)), 0), min(int(np.ceil(x + radius)) + 1, W)
        r0, r1 = max(int(np.floor(y - radius)), 0), min(int(np.ceil(y + radius)) + 1, H)
        cols = np.arange(c0, c1) + 0.5 - x
        rows = np.arange(r0, r1) + 0.5 - y
        near = rows[:, None] ** 2 + cols[None, :] ** 2 <= radius * radius
        own = near & full_mask[r0:r1, c0:c1]
        seen = own & (owner[r0:r1, c0:c1] == shape_index)
        if own.any() and 2 * np.count_nonzero(seen) >= np.count_nonzero(own):
            flags[i] = 2
    return flags


def scene_keypoints(shapes, owner, kept) -> np.ndarray:
    """``(len(kept), NUM_KEYPOINTS, 3)`` float32 rows ``(x, y, v)`` of the shapes ``kept``
    (indices into ``shapes``), ordered clockwise from the top, empty slots ``(0, 0, 0)``."""
    H, W = owner.shape
    out = np.zeros((len(kept), NUM_KEYPOINTS, 3), dtype=np.float32)
    for row, k in enumerate(kept):
        points = shape_keypoints(shapes[k])
        points = points[clockwise_order(points)]
        v = keypoint_visibility(points, k, owner, shape_mask(shapes[k], H, W))
        out[row, : len(points), :2] = points
        out[row, : len(points), 2] = v
    return out


def flip_keypoints(keypoints, size, axis=-1) -> np.ndarray:
    """Mirror ``keypoints (G, K, 3)`` about the image's vertical centre line (``axis=-1``, a
    left-right flip of an image ``size`` pixels wide: x → size − x) or horizontal one
    (``axis=-2``: y → size − y), and put each object's labelled keypoints (v > 0) back in the
    clockwise-from-the-top order: a mirror turns clockwise into counter-clockwise. The rule places
    an object's keypoints by where they all are, so every keypoint an object has must be
    labelled (the shapes' are: hidden ones are v = 1); empty slots (v = 0) stay last."""
    try:
        kp = np.array(keypoints, dtype=np.float32, copy=True)
    except (TypeError, ValueError):
        kp = np.zeros(0)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (G, K, 3) rows (x, y, v), got {keypoints!r:.80}")
    if isinstance(size, bool) or not isinstance(size, int | float | np.integer | np.floating):
        raise TypeError(f"size must be the image's width or height in pixels, got {size!r:.80}")
    if isinstance(axis, bool) or not isinstance(axis, int) or axis not in (-1, -2):
        raise ValueError(f"axis must be -1 (left-right) or -2 (top-bottom), got {axis!r}")
    coord = 0 if axis == -1 else 1
    for g in range(len(kp)):
        labelled = np.flatnonzero(kp[g, :, 2] > 0)
        kp[g, labelled, coord] = size - kp[g, labelled, coord]
        order = labelled[clockwise_order(kp[g, labelled, :2])] if len(labelled) > 2 else labelled
        kp[g, labelled] = kp[g, order]
    return kp


def instances_of(shapes, owner, min_visible_area):
    """The instance view of a rendered scene, as :class:`ShapesInstances` gives it: indices of the
    shapes kept (visible area ≥ ``min_visible_area``) and ``boxes``, ``labels``, ``masks``."""
    areas = np.bincount(owner.ravel() + 1, minlength=len(shapes) + 1)[1:]
    kept = np.flatnonzero(areas >= min_visible_area)
    masks = owner[None, :, :] == kept[:, None, None]
    labels = np.array([shapes[k].label for k in kept], dtype=np.int64)
    target = {"boxes": masks_to_boxes(masks), "labels": labels, "masks": masks.astype(np.uint8)}
    return kept, target


class ShapesKeypoints(ShapesInstances):
    """:class:`ShapesInstances` with keypoints: the same images, boxes, labels and masks for the
    same arguments, and ``target["keypoints"]`` float32 ``(K, 4, 3)`` rows ``(x, y, v)`` (see the
    module's docstring for the order and the visibility flags)."""

    num_keypoints = NUM_KEYPOINTS
    skeletons = SKELETONS

    def __getitem__(self, index) -> tuple[np.ndarray, dict]:
        image, shapes, owner = self._draw(index)
        kept, target = instances_of(shapes, owner, self.min_visible_area)
        target["keypoints"] = scene_keypoints(shapes, owner, kept)
        return image, target


__all__ = [
    "KEYPOINT_NAMES",
    "NUM_KEYPOINTS",
    "SKELETONS",
    "ShapesKeypoints",
    "clockwise_order",
    "flip_keypoints",
    "instances_of",
    "keypoint_visibility",
    "scene_keypoints",
    "shape_keypoints",
]
