"""Procedural datasets (nothing is downloaded) and batching.

- :class:`ShapesSemantic` / :class:`ShapesInstances`: squares, circles and triangles as class maps
  or as instances (boxes, labels, visible masks), drawn by one shared core.
- :class:`ShapesKeypoints`: the same instances with their keypoints (corners, extreme points).
- :class:`ShapesPanoptic` / :class:`ShapesStuff`: the shapes on stuff backgrounds, for panoptic
  segmentation (instances + panoptic ground truth) and for its semantic model.
- :class:`CellMembranes`: EM-like cell images with membrane labels, for U-Net.
- :class:`DataLoader`, :class:`Subset`, :class:`Cached` (render once, keep), :func:`random_split`,
  :func:`hflip`, :func:`vflip`.
"""

from .cells import CellMembranes
from .keypoints import ShapesKeypoints
from .loader import Cached, DataLoader, Subset, default_collate, hflip, random_split, vflip
from .panoptic import ShapesPanoptic, ShapesStuff
from .shapes import (
    CLASS_NAMES,
    Shape,
    ShapesInstances,
    ShapesSemantic,
    masks_to_boxes,
    render,
    shape_mask,
)

__all__ = [
    "CLASS_NAMES",
    "Cached",
    "CellMembranes",
    "DataLoader",
    "Shape",
    "ShapesInstances",
    "ShapesKeypoints",
    "ShapesPanoptic",
    "ShapesSemantic",
    "ShapesStuff",
    "Subset",
    "default_collate",
    "hflip",
    "masks_to_boxes",
    "random_split",
    "render",
    "shape_mask",
    "vflip",
]
