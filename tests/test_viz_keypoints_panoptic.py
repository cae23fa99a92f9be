"""Pictures of keypoints and panoptic maps: what is drawn, checked on the artists and colours."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from minidense.viz.detection import draw_instances, plot_detections
from minidense.viz.panoptic import panoptic_rgb, plot_panoptic, semantic_rgb

SQUARE = [[30.0, 10, 2], [30, 30, 1], [10, 30, 2], [10, 10, 0]]  # one hidden, one unlabelled
TRIANGLE = [[20.0, 5, 2], [30, 25, 2], [10, 25, 2], [0, 0, 0]]


def _lines(ax):
    return [ln for ln in ax.lines if ln.get_linestyle() == "-"]


def _points(ax):
    return [ln for ln in ax.lines if ln.get_marker() == "o"]


def test_ground_truth_keypoints_are_drawn_by_visibility_with_their_skeleton():
    fig, ax = plt.subplots()
    try:
        draw_instances(ax, np.zeros((3, 40, 40), np.float32), np.array([[10.0, 10, 30, 30]] * 2),
                       np.array([1, 3]), keypoints=np.array([SQUARE, TRIANGLE]))  # fmt: skip
        # Square: 3 labelled points, and the outline's sides between labelled ones (0-1, 1-2),
        # each a white halo and a coloured line; triangle: 3 points, 3 sides.
        assert len(_points(ax)) == 3 + 3
        assert len(_lines(ax)) == 2 * (2 + 3)
        hollow = [p for p in _points(ax) if str(p.get_markerfacecolor()) == "none"]
        assert len(hollow) == 1  # the hidden corner
    finally:
        plt.close(fig)


def test_predicted_keypoints_are_all_drawn_and_follow_the_score_threshold():
    pred = {"boxes": np.array([[10.0, 10, 30, 30]] * 2), "labels": np.array([1, 2]),
            "scores": np.array([0.9, 0.2]),
            "keypoints": np.array([SQUARE, SQUARE]) * [1, 1, 0] + [0, 0, 0.5]}  # fmt: skip
    fig = plot_detections([np.zeros((3, 40, 40), np.float32)], [pred], score_thresh=0.5)
    try:
        (ax,) = fig.axes
        assert len(_points(ax)) == 4 and len(_lines(ax)) == 2 * 4  # one square, all of it
    finally:
        plt.close(fig)


def test_panoptic_colours_differ_per_instance_and_shade_per_stuff_class():
    seg = np.array([[1, 1, 2, 2], [3, 3, 4, 0]])
    pan = {"segments": seg, "ids": np.array([1, 2, 3, 4]), "labels": np.array([1, 1, 5, 4])}
    rgb = panoptic_rgb(pan, things=(1, 2), stuff=(4, 5, 6))
    assert not np.allclose(rgb[0, 0], rgb[0, 2])  # two squares, two colours
    assert np.allclose(rgb[1, 0], 0.55) and np.allclose(rgb[1, 2], 0.3)  # greys by stuff order
    assert (rgb[1, 3] == 0).all()  # void is black
    assert np.allclose(
        semantic_rgb(np.array([[0, 1, 2]]), (0, 4, 5), (4, 5, 6))[0, :, 0], [1, 0.3, 0.55]
    )
    with pytest.raises(ValueError, match="neither a thing"):
        panoptic_rgb(dict(pan, labels=np.array([1, 1, 9, 4])), things=(1, 2), stuff=(4, 5, 6))
    fig = plot_panoptic([np.zeros((3, 2, 4), np.float32)], [pan], [pan], (1, 2), (4, 5, 6))
    try:
        assert [ax.get_title() for ax in fig.axes] == ["image", "ground truth", "prediction"]
    finally:
        plt.close(fig)
