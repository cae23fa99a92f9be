"""Pictures of panoptic segmentations: a colour per thing instance, a shade of grey per stuff class."""

import numpy as np

from .segmentation import (
    PALETTE,
    _check_images,
    _check_same_length,
    _closed_on_error,
    _figure,
    _save,
    to_rgb,
)


def _shade(stuff, category):
    """The grey of a stuff ``category``: evenly spaced from 0.3 to 0.8 over ``stuff``."""
    return 0.3 + 0.5 * list(stuff).index(category) / max(len(stuff) - 1, 1)


def panoptic_rgb(segmentation, things, stuff):
    """``(H, W, 3)`` colours of a panoptic ``segmentation`` (``segments``, ``ids``, ``labels``):
    each thing instance its own colour (instances of one class differ), each stuff category
    a shade of grey by its place in ``stuff`` (the same in every picture), void black."""
    seg = np.asarray(segmentation["segments"])
    rgb = np.zeros(seg.shape + (3,), dtype=np.float32)
    stuff = list(stuff)
    n_things = 0
    for i, c in zip(segmentation["ids"], segmentation["labels"], strict=True):
        here = seg == i
        if int(c) in things:
            rgb[here] = PALETTE[1 + n_things % (len(PALETTE) - 1)]
            n_things += 1
        elif int(c) in stuff:
            rgb[here] = _shade(stuff, int(c))
        else:
            raise ValueError(
                f"category {int(c)} is neither a thing {tuple(things)} nor stuff {tuple(stuff)}"
            )
    return rgb


def semantic_rgb(label, stuff_of_class, stuff):
    """``(H, W, 3)`` colours of a semantic model's class map ``label``, as :func:`panoptic_rgb`
    shades stuff: ``stuff_of_class[c]`` is class c's stuff category, or 0 for "things" (white)."""
    shades = np.array([1.0 if c == 0 else _shade(stuff, c) for c in stuff_of_class], np.float32)
    return np.repeat(shades[np.asarray(label)][..., None], 3, axis=-1)


def plot_panoptic(images, predictions, targets=None, things=(), stuff=(), path=None):
    """One row per image: the image, the ground truth (if given) and the prediction, coloured by
    :func:`panoptic_rgb`, with the segments' outlines."""
    n = len(images)
    _check_images(n)
    _check_same_length(n, predictions=predictions)
    if targets is not None:
        _check_same_length(n, targets=targets)
    columns = [("image", None), ("ground truth", targets), ("prediction", predictions)]
    columns = [c for c in columns if c[0] == "image" or c[1] is not None]
    fig, axes = _figure(n, len(columns), scale=2.6)
    with _closed_on_error(fig):
        for i, image in enumerate(images):
            axes[i, 0].imshow(to_rgb(image))
            for j, (_, segs) in enumerate(columns[1:], start=1):
                s = segs[i]
                axes[i, j].imshow(panoptic_rgb(s, things, stuff))
                # Outlines where neighbouring pixels belong to different segments.
                ids = np.asarray(s["segments"])
                edge = np.zeros(ids.shape, bool)
                edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
                edge[1:, :] |= ids[1:, :] != ids[:-1, :]
                axes[i, j].imshow(np.where(edge, 1.0, np.nan), cmap="gray", vmin=0, vmax=1)
        for ax, (title, _) in zip(axes[0], columns, strict=True):
            ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)
