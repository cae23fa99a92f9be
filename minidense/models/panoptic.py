"""One panoptic map from two models: a semantic model's stuff and an instance model's things.

The heuristic of Kirillov et al. (Panoptic Segmentation, CVPR 2019, §7; Panoptic FPN's
inference), as Detectron2's ``combine_semantic_and_instance_outputs``:

1. **Things, by confidence.** Instances scoring below ``score_thresh`` are dropped; the rest are
   placed from the most to the least confident, each on the pixels no earlier one took. An
   instance that finds more than ``overlap_thresh`` of its mask already taken is dropped whole:
   what remains of it would be a small fragment, not an object.
2. **Stuff where no thing is.** Each stuff class of the semantic map fills its pixels that no
   thing took, unless fewer than ``stuff_area`` of them are left (small fragments go). The
   semantic model's "things" class is never stuff.
3. Whatever is left is void (id 0).

The result uses the format of :mod:`minidense.metrics.panoptic` (``segments``, ``ids``,
``labels``), with each segment's ``scores`` (an instance's confidence; 1 for stuff).
"""

import numpy as np


def _array(x, name, kinds):
    """``x`` as an array of one of the dtype ``kinds``, or an error naming it."""
    try:
        a = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    except ValueError:
        a = np.asarray(None)
    if a.dtype.kind not in kinds and (a.size or a.dtype.kind != "f"):  # [] is float
        what = "ints" if kinds == "iu" else "numbers"
        raise TypeError(f"{name} must be an array of {what}, got {x!r:.80}")
    return a


def combine_panoptic(instances, semantic, stuff_categories, thing_categories=None,
                     score_thresh=0.5, overlap_thresh=0.5, stuff_area=64):  # fmt: skip
    """Merge one image's instance predictions and semantic map into a panoptic segmentation.

    Args:
        instances: a ``MaskRCNN.predict`` dict: ``masks (D, H, W)`` bool, ``scores (D,)``,
            ``labels (D,)``.
        semantic: ``(H, W)`` int class map from the semantic model.
        stuff_categories: for each semantic class, its panoptic category, or 0 for a class that
            is not stuff (the semantic model's "things").
        thing_categories: for each instance label, its panoptic category (default: the label).
        score_thresh, overlap_thresh, stuff_area: the heuristic's three knobs (module docstring).

    Returns ``{"segments" (H, W) int64, "ids" (S,), "labels" (S,), "scores" (S,)}``.
    """
    if not isinstance(instances, dict) or any(
        k not in instances for k in ("masks", "scores", "labels")
    ):
        raise TypeError(
            f"instances must be a dict with masks, scores and labels (MaskRCNN.predict's), got "
            f"{instances!r:.80}"
        )
    masks, scores, labels = (_array(instances[k], f"instances[{k!r}]", kinds)
                             for k, kinds in (("masks", "biuf"), ("scores", "biuf"), ("labels", "iu")))  # fmt: skip
    scores, labels = scores.astype(np.float64).reshape(-1), labels.reshape(-1)
    masks = masks.astype(bool)
    semantic = _array(semantic, "semantic", "iu")
    stuff_categories = _array(stuff_categories, "stuff_categories", "iu")
    if stuff_categories.ndim != 1 or (stuff_categories < 0).any():
        raise ValueError(
            f"stuff_categories must be one category (>= 0) per semantic class, got {stuff_categories!r:.80}"
        )
    if thing_categories is not None:
        thing_categories = _array(thing_categories, "thing_categories", "iu")
        if thing_categories.ndim != 1 or (labels.size and labels.max() >= len(thing_categories)):
            raise ValueError(
                f"thing_categories must hold one category per instance label, got "
                f"{thing_categories!r:.80}"
            )
    if semantic.ndim != 2:
        raise ValueError(
            f"semantic must be an (H, W) int class map, got {semantic.shape} {semantic.dtype}"
        )
    if masks.shape[1:] != semantic.shape or not len(masks) == len(scores) == len(labels):
        raise ValueError(
            f"instances: masks {masks.shape}, scores {scores.shape} and labels {labels.shape} "
            f"must hold one entry per detection, masks of the semantic map's size {semantic.shape}"
        )
    if semantic.size and (semantic.min() < 0 or semantic.max() >= len(stuff_categories)):
        raise ValueError(
            f"semantic classes must index stuff_categories (0..{len(stuff_categories) - 1}), got "
            f"{semantic.min()}..{semantic.max()}"
        )
    for name, v in (("score_thresh", score_thresh), ("overlap_thresh", overlap_thresh)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    if (
        isinstance(stuff_area, bool)
        or not isinstance(stuff_area, int | np.integer)
        or stuff_area < 0
    ):
        raise ValueError(f"stuff_area must be an int >= 0 (pixels), got {stuff_area!r}")
    to_category = (lambda lab: int(lab)) if thing_categories is None else (
        lambda lab: int(thing_categories[int(lab)]))  # fmt: skip

    segments = np.zeros(semantic.shape, dtype=np.int64)
    ids, cats, seg_scores = [], [], []
    for d in np.argsort(-scores, kind="stable"):
        if scores[d] < score_thresh:
            break
        mask = masks[d]
        area = np.count_nonzero(mask)
        if area == 0:
            continue
        taken = np.count_nonzero(mask & (segments > 0))
        if taken / area > overlap_thresh:
            continue
        ids.append(len(ids) + 1)
        segments[mask & (segments == 0)] = ids[-1]
        cats.append(to_category(labels[d]))
        seg_scores.append(scores[d])
    for cls in np.unique(semantic):
        if stuff_categories[cls] == 0:
            continue
        region = (semantic == cls) & (segments == 0)
        if np.count_nonzero(region) < max(stuff_area, 1):
            continue
        ids.append(len(ids) + 1)
        segments[region] = ids[-1]
        cats.append(int(stuff_categories[cls]))
        seg_scores.append(1.0)
    return {"segments": segments, "ids": np.array(ids, dtype=np.int64),
            "labels": np.array(cats, dtype=np.int64), "scores": np.array(seg_scores)}  # fmt: skip
