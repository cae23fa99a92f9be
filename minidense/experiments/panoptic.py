"""Panoptic segmentation from two trained models: the stuff of a semantic model (trained with
``train_segmentation(dataset="stuff")``) and the things of a Mask R-CNN (trained with
``train_maskrcnn(dataset="panoptic")``), merged by :func:`~minidense.models.panoptic.combine_panoptic`
and scored with PQ on :class:`~minidense.data.ShapesPanoptic` scenes."""

import numpy as np

from .. import no_grad, tensor
from ..data.panoptic import STUFF_CATEGORIES, THING_CATEGORIES, ShapesPanoptic
from ..metrics.panoptic import PanopticQuality
from ..models.maskrcnn import MaskRCNN
from ..models.panoptic import combine_panoptic
from ..nn import Module

# The semantic model's classes (ShapesStuff): 0 any thing, then the stuff in category order.
STUFF_OF_CLASS = (0,) + STUFF_CATEGORIES


def predict_panoptic(maskrcnn, semantic_model, images, **merge_options):
    """Panoptic segmentations of ``images (N, 3, H, W)``: per image ``(panoptic, instances,
    semantic)`` — the merged segmentation, Mask R-CNN's prediction and the semantic class map.
    ``merge_options`` go to :func:`~minidense.models.panoptic.combine_panoptic`."""
    if not isinstance(maskrcnn, MaskRCNN):
        raise TypeError(f"maskrcnn must be a MaskRCNN, got {type(maskrcnn).__name__}")
    if not isinstance(semantic_model, Module):
        raise TypeError(f"semantic_model must be an nn.Module, got {type(semantic_model).__name__}")
    instances = maskrcnn.predict(images)  # checks the images, and says what is wrong with them
    if not instances:  # no images, no segmentations (as MaskRCNN.predict)
        return []
    try:
        images = np.asarray(images.numpy() if hasattr(images, "numpy") else images, np.float32)
    except ValueError:
        raise ValueError(
            "images must be one (N, 3, H, W) batch: the semantic model takes one size"
        ) from None
    was_training = semantic_model.training
    semantic_model.eval()
    try:
        with no_grad():
            semantic = semantic_model(tensor(images)).numpy().argmax(axis=1)
    finally:
        semantic_model.train(was_training)
    return [(combine_panoptic(p, s, STUFF_OF_CLASS, **merge_options), p, s)
            for p, s in zip(instances, semantic, strict=True)]  # fmt: skip


def evaluate_panoptic(maskrcnn, semantic_model, dataset, batch_size=4, shown=4, **merge_options):
    """PQ, SQ and RQ (:meth:`PanopticQuality.summarize`) of the merged predictions on
    ``dataset`` (a :class:`ShapesPanoptic`), and the first ``shown`` samples as
    ``(image, ground truth, panoptic, instances, semantic)``."""
    if not isinstance(dataset, ShapesPanoptic):
        raise TypeError(f"dataset must be a ShapesPanoptic, got {type(dataset).__name__}")
    for name, value, low in (("batch_size", batch_size, 1), ("shown", shown, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r:.80}")
    ev = PanopticQuality(THING_CATEGORIES, STUFF_CATEGORIES)
    samples = []
    for start in range(0, len(dataset), batch_size):
        drawn = [dataset.sample(i) for i in range(start, min(start + batch_size, len(dataset)))]
        images = np.stack([d[0] for d in drawn])
        for (image, _, gt), merged in zip(drawn, predict_panoptic(
                maskrcnn, semantic_model, images, **merge_options), strict=True):  # fmt: skip
            ev.add(merged[0], gt)
            if len(samples) < shown:
                samples.append((image, gt) + merged)
    return ev.summarize(), samples
