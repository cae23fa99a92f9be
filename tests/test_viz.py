"""Pictures: what is drawn, checked on the matplotlib artists (no pixel comparisons)."""

import numpy as np
import pytest

from minidense.viz.detection import plot_detections


def _prediction():
    masks = np.zeros((3, 16, 16), bool)
    masks[:, 2:6, 2:6] = True
    return {
        "boxes": np.array([[2, 2, 6, 6], [1, 1, 9, 9], [0, 0, 4, 4]], np.float32),
        "labels": np.array([1, 2, 3]),
        "scores": np.array([0.9, 0.5, 0.06], np.float32),
        "masks": masks,
    }


@pytest.mark.parametrize("thresh, drawn", [(0.5, 2), (0.95, 0), (0.0, 3)])
def test_plot_detections_draws_only_confident_predictions(thresh, drawn):
    image = np.zeros((3, 16, 16), np.float32)
    target = {k: v[:1] for k, v in _prediction().items() if k != "scores"}
    fig = plot_detections([image], [_prediction()], [target], score_thresh=thresh)
    truth, pred = fig.axes
    assert len(truth.patches) == 1
    assert len(pred.patches) == drawn
    assert len(pred.texts) == drawn


def test_plot_detections_rejects_a_threshold_outside_0_1():
    with pytest.raises(ValueError, match="score_thresh must be in"):
        plot_detections([np.zeros((3, 4, 4), np.float32)], [_prediction()], score_thresh=2)
