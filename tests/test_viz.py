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


def _open_figures():
    import matplotlib.pyplot as plt

    return len(plt.get_fignums())


def test_nothing_to_plot_is_a_clear_error():
    from minidense.viz.segmentation import plot_predictions

    before = _open_figures()
    with pytest.raises(ValueError, match="nothing to plot: give at least one image"):
        plot_detections([], [])
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_predictions([], [], [])
    assert _open_figures() == before


def test_mismatched_arguments_are_clear_errors_and_leak_no_figure():
    from minidense.viz.segmentation import plot_predictions

    image, label = np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), int)
    before = _open_figures()
    with pytest.raises(ValueError, match="titles must name the 3 columns"):
        plot_predictions([image], [label], [label], titles=("a", "b"))
    with pytest.raises(ValueError, match="preds has 0 items but there are 1 images"):
        plot_predictions([image], [label], [])
    with pytest.raises(ValueError, match="predictions has 2 items"):
        plot_detections([image], [_prediction(), _prediction()])
    with pytest.raises(ValueError, match="targets has 0 items"):
        plot_detections([image], [_prediction()], [])
    assert _open_figures() == before


def test_a_failure_while_drawing_closes_the_figure():
    from minidense.viz.segmentation import plot_curves, plot_predictions

    before = _open_figures()
    with pytest.raises(ValueError, match=r"image must be \(C, H, W\)"):
        plot_detections([np.zeros((8, 8))], [_prediction()])  # a 2-D image fails in to_rgb
    with pytest.raises(ValueError, match="label must be whole-number"):
        plot_predictions([np.zeros((3, 4, 4))], [np.full((4, 4), 0.5)], [np.zeros((4, 4), int)])
    with pytest.raises(FileNotFoundError):
        plot_curves([{"loss": 1.0}], path="/nonexistent-minidense-dir/curves.png")
    assert _open_figures() == before


def test_float_labels_are_drawn_when_they_are_whole_numbers():
    from minidense.viz.segmentation import overlay_labels

    image = np.zeros((3, 16, 16), np.float32)
    p = {**_prediction(), "labels": np.array([1.0, 2.0, 3.0])}
    fig = plot_detections([image], [p], class_names=["bg", "a", "b", "c"], score_thresh=0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["a 0.90", "b 0.50", "c 0.06"]
    with pytest.raises(ValueError, match="labels must be whole-number class indices"):
        plot_detections([image], [{**p, "labels": np.array([1.5, 2.0, 3.0])}], score_thresh=0)
    np.testing.assert_array_equal(
        overlay_labels(image, np.ones((16, 16))), overlay_labels(image, np.ones((16, 16), int))
    )


def test_plot_curves_shows_every_key_any_epoch_logged():
    from minidense.viz.segmentation import plot_curves

    history = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5, "mAP": 0.3}, {"epoch": 3}]
    fig = plot_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "mAP"]
    loss, m_ap = (ax.lines[0] for ax in fig.axes)
    np.testing.assert_array_equal(loss.get_xdata(), [1, 2])  # epoch 3 logged no loss: skipped
    np.testing.assert_array_equal(m_ap.get_xdata(), [2])
    np.testing.assert_array_equal(m_ap.get_ydata(), [0.3])
