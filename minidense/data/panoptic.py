"""Procedural scenes for panoptic segmentation: the shapes ("things") on a landscape of "stuff".

The things are exactly those of :class:`ShapesKeypoints` for the same arguments (same shapes,
masks, boxes, keypoints); only the background changes. Where it was one colour it is now two or
three bands of stuff, one above the other with wavy borders, each of one kind that a model can
tell by colour and texture:

- **sky**: blue, smooth, brighter towards the bottom;
- **grass**: green, grainy;
- **sand**: yellow, with fine ripples.

Panoptic categories (``PANOPTIC_NAMES``): 0 void, 1-3 the things (square, circle, triangle, the
labels of ``ShapesInstances``), 4-6 the stuff (sky, grass, sand). Pixels of shapes too hidden to
be instances (visible area under ``min_visible_area``) are void in the panoptic ground truth.

Two views of the same images:

- :class:`ShapesPanoptic`: ``ds[i]`` → ``(image, target)`` for Mask R-CNN (instances and
  keypoints), and ``ds.panoptic(i)`` → the panoptic ground truth;
- :class:`ShapesStuff`: ``ds[i]`` → ``(image, label)`` for a semantic model, with label 0 for
  any thing ("things", one class, as in Panoptic FPN's semantic branch) and 1-3 for the stuff.
"""

from __future__ import annotations

import numpy as np

from .keypoints import ShapesKeypoints, instances_of, scene_keypoints
from .shapes import _ShapesBase, draw_sample, smooth_noise

STUFF_NAMES = ("sky", "grass", "sand")
THING_NAMES = ("square", "circle", "triangle")
PANOPTIC_NAMES = ("void",) + THING_NAMES + STUFF_NAMES
THING_CATEGORIES = (1, 2, 3)
STUFF_CATEGORIES = (4, 5, 6)
STUFF_CLASS_NAMES = ("things",) + STUFF_NAMES  # the semantic model's classes


def stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size)`` int64 map of stuff kinds (0 sky, 1 grass, 2 sand): two or three bands
    from top to bottom with wavy borders, neighbouring bands of different kinds."""
    n = int(rng.integers(2, 4))
    kinds = [int(rng.integers(3))]
    for _ in range(n - 1):
        kinds.append((kinds[-1] + int(rng.integers(1, 3))) % 3)
    cuts = np.sort(rng.uniform(0.25, 0.8, n - 1)) * size
    centres = np.arange(size) + 0.5
    layout = np.full((size, size), kinds[0], dtype=np.int64)
    for cut, kind in zip(cuts, kinds[1:], strict=True):
        amplitude = rng.uniform(0.02, 0.08) * size
        period = rng.uniform(0.5, 1.5) * size
        border = cut + amplitude * np.sin(2 * np.pi * centres / period + rng.uniform(0, 2 * np.pi))
        layout[centres[:, None] >= border[None, :]] = kind
    return layout


def paint_stuff(rng: np.random.Generator, layout: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float64 colours of the stuff ``layout``: per kind a base colour jittered per
    image and a texture of its own."""
    H, W = layout.shape
    y = (np.arange(H)[:, None] + 0.5) / H
    x = (np.arange(W)[None, :] + 0.5) / W
    image = np.zeros((3, H, W))
    bases = np.array([[0.45, 0.65, 0.95], [0.30, 0.60, 0.25], [0.85, 0.75, 0.50]])
    for kind, base in enumerate(bases):
        colour = base + rng.uniform(-0.08, 0.08, 3)
        if kind == 0:  # sky: a smooth gradient
            texture = 0.25 * (y - 0.5) + 0.04 * smooth_noise(rng, H, W, cell=max(4.0, H / 3))
        elif kind == 1:  # grass: grain
            texture = rng.normal(0.0, 0.07, (H, W))
        else:  # sand: ripples a few pixels apart
            theta, wavelength = rng.uniform(0, np.pi), rng.uniform(4.0, 7.0) / max(H, W)
            ripple = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / wavelength)
            texture = 0.06 * ripple
        here = layout == kind
        image[:, here] = colour[:, None] + np.broadcast_to(texture, (H, W))[here][None, :]
    return image


def draw_panoptic_sample(seed, index, image_size, min_shapes, max_shapes, size_range, noise):
    """Sample ``index`` of the stream ``seed``: the shapes of :func:`draw_sample` over stuff.

    Returns ``(image (3, H, W) float32, shapes, owner (H, W), layout (H, W))``. The stuff comes from
    its own stream, so the shapes, their pixels and the ``owner`` map are those of the plain
    dataset."""
    image, shapes, owner = draw_sample(
        seed, index, image_size, min_shapes, max_shapes, size_range, noise
    )
    rng = np.random.default_rng([seed, index, 1])
    layout = stuff_layout(rng, image_size)
    stuff = paint_stuff(rng, layout)
    if noise > 0:
        stuff += rng.normal(0.0, noise, size=stuff.shape)
    background = owner == -1
    image = image.copy()
    image[:, background] = np.clip(stuff[:, background], 0.0, 1.0)
    return image.astype(np.float32), shapes, owner, layout


def panoptic_ground_truth(kept, masks, labels, owner, layout):
    """The panoptic ground truth of a scene: ``{"segments" (H, W) int64 ids (0 void), "ids" (S,),
    "labels" (S,) panoptic categories, "iscrowd" (S,) bool}``: one segment per kept thing (ids
    1..K in the order of the instance target), then one per stuff kind present."""
    segments = np.zeros(owner.shape, dtype=np.int64)
    for row in range(len(kept)):
        segments[masks[row].astype(bool)] = row + 1
    ids, cats = list(range(1, len(kept) + 1)), [int(c) for c in labels]
    background = owner == -1
    for kind in range(len(STUFF_NAMES)):
        region = background & (layout == kind)
        if region.any():
            ids.append(len(ids) + 1)
            cats.append(STUFF_CATEGORIES[kind])
            segments[region] = ids[-1]
    return {"segments": segments, "ids": np.array(ids, dtype=np.int64),
            "labels": np.array(cats, dtype=np.int64), "iscrowd": np.zeros(len(ids), dtype=bool)}  # fmt: skip


def _draw_stuff(ds, index):
    """``draw_panoptic_sample`` with a dataset's arguments."""
    return draw_panoptic_sample(ds.seed, ds._index(index), ds.image_size, ds.min_shapes,
                                ds.max_shapes, ds.size_range, ds.noise)  # fmt: skip


class ShapesPanoptic(ShapesKeypoints):
    """The shapes of :class:`ShapesKeypoints` on stuff backgrounds.

    ``ds[i]`` → ``(image, target)`` with ``boxes``, ``labels``, ``masks`` and ``keypoints`` as
    :class:`ShapesKeypoints` gives them for the same arguments; ``ds.panoptic(i)`` → the
    panoptic ground truth (see :func:`panoptic_ground_truth`); ``ds.sample(i)`` → all three
    from one drawing."""

    thing_categories = THING_CATEGORIES
    stuff_categories = STUFF_CATEGORIES
    panoptic_names = PANOPTIC_NAMES

    def sample(self, index) -> tuple[np.ndarray, dict, dict]:
        image, shapes, owner, layout = _draw_stuff(self, index)
        kept, target = instances_of(shapes, owner, self.min_visible_area)
        target["keypoints"] = scene_keypoints(shapes, owner, kept)
        gt = panoptic_ground_truth(kept, target["masks"], target["labels"], owner, layout)
        return image, target, gt

    def __getitem__(self, index) -> tuple[np.ndarray, dict]:
        image, target, _ = self.sample(index)
        return image, target

    def panoptic(self, index) -> dict:
        return self.sample(index)[2]


class ShapesStuff(_ShapesBase):
    """The semantic view of :class:`ShapesPanoptic` (same images for the same arguments).

    ``ds[i]`` → ``(image, label)``: label int64 (H, W) with 0 for any thing and 1, 2, 3 for sky,
    grass, sand (``class_names``); add 3 to a stuff label for its panoptic category."""

    num_classes = len(STUFF_CLASS_NAMES)
    class_names = STUFF_CLASS_NAMES

    def __init__(self, n, image_size=128, seed=0, min_shapes=1, max_shapes=4,
                 size_range=(0.1, 0.25), noise=0.03):  # fmt: skip
        super().__init__(n, image_size, seed, min_shapes, max_shapes, size_range, noise)

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        image, _, owner, layout = _draw_stuff(self, index)
        return image, np.where(owner >= 0, 0, layout + 1)
