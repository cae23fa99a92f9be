"""Segmentation metrics against hand-computed cases and a slow loop reference."""

import numpy as np
import pytest

from minidense.metrics import (
    SegmentationMeter,
    class_accuracy,
    confusion_matrix,
    frequency_weighted_iou,
    iou_per_class,
    mean_accuracy,
    mean_iou,
    pixel_accuracy,
)


def reference_confusion(pred, target, k, ignore_index=None):
    cm = np.zeros((k, k), np.int64)
    for p, t in zip(np.ravel(pred), np.ravel(target), strict=True):
        if ignore_index is not None and t == ignore_index:
            continue
        cm[t, p] += 1
    return cm


class FakeTensor:
    """Stands in for a minidense Tensor: only ``.numpy()`` is used."""

    def __init__(self, a):
        self._a = np.asarray(a)

    def numpy(self):
        return self._a


# target / pred, 3 classes:
#   target 0 0 1 1 1 2      class 0: tp 1, fn 1 (a 0 read as 1), fp 0         -> IoU 1/2
#   pred   0 1 1 1 2 2      class 1: tp 2, fn 1 (a 1 read as 2), fp 1          -> IoU 2/4
#                           class 2: tp 1, fn 0, fp 1                          -> IoU 1/2
TARGET = np.array([[0, 0, 1], [1, 1, 2]])
PRED = np.array([[0, 1, 1], [1, 2, 2]])


def test_hand_computed_case():
    cm = confusion_matrix(PRED, TARGET, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    assert cm.dtype == np.int64
    np.testing.assert_allclose(iou_per_class(cm), [0.5, 0.5, 0.5])
    assert mean_iou(cm) == pytest.approx(0.5)
    assert mean_iou(PRED, TARGET, 3) == pytest.approx(0.5)
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)
    assert pixel_accuracy(PRED, TARGET, num_classes=3) == pytest.approx(4 / 6)
    np.testing.assert_allclose(class_accuracy(cm), [1 / 2, 2 / 3, 1.0])
    assert mean_accuracy(cm) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert frequency_weighted_iou(cm) == pytest.approx((2 * 0.5 + 3 * 0.5 + 1 * 0.5) / 6)


def test_absent_classes_are_skipped():
    # Class 2 appears nowhere, class 3 only in the prediction (a false positive: IoU 0, counted).
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 3])
    iou = iou_per_class(confusion_matrix(pred, target, 4))
    assert np.isnan(iou[2])
    np.testing.assert_allclose(iou[[0, 1, 3]], [1.0, 0.5, 0.0])
    assert mean_iou(pred, target, 4) == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert np.isnan(class_accuracy(confusion_matrix(pred, target, 4))[3])  # not in the truth
    empty = np.zeros((3, 3), np.int64)
    assert np.isnan(mean_iou(empty)) and np.isnan(pixel_accuracy(empty))


def test_ignore_index():
    target = np.array([[0, 255, 1], [255, 1, 1]])
    pred = np.array([[0, 1, 0], [7, 1, 1]])  # predictions under ignored pixels may be anything
    cm = confusion_matrix(pred, target, 2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 2]])
    # ignore_index inside the label range just removes those pixels
    cm0 = confusion_matrix(PRED, TARGET, 3, ignore_index=0)
    np.testing.assert_array_equal(cm0, [[0, 0, 0], [0, 2, 1], [0, 0, 1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_loop_reference(seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 5, size=(2, 7, 9))
    target[0, :2] = 255
    pred = rng.integers(0, 5, size=(2, 7, 9)).astype(np.uint8)
    cm = confusion_matrix(pred, target, 5, ignore_index=255)
    np.testing.assert_array_equal(cm, reference_confusion(pred, target, 5, 255))
    # IoU from the definition on boolean masks
    keep = target != 255
    for c in range(5):
        inter = ((pred == c) & (target == c) & keep).sum()
        union = (((pred == c) | (target == c)) & keep).sum()
        assert iou_per_class(cm)[c] == pytest.approx(inter / union)


def test_tensors_and_meter_accumulate():
    rng = np.random.default_rng(3)
    targets = [rng.integers(0, 3, size=(2, 4, 4)) for _ in range(3)]
    preds = [rng.integers(0, 3, size=(2, 4, 4)) for _ in range(3)]
    meter = SegmentationMeter(3, class_names=["a", "b", "c"])
    for p, t in zip(preds, targets, strict=True):
        meter.update(FakeTensor(p), FakeTensor(t))
    whole = confusion_matrix(np.concatenate(preds), np.concatenate(targets), 3)
    np.testing.assert_array_equal(meter.confusion, whole)
    m = meter.compute()
    assert m["mean_iou"] == pytest.approx(mean_iou(whole))
    assert m["pixel_accuracy"] == pytest.approx(pixel_accuracy(whole))
    assert "mIoU" in meter.summary() and " c  IoU" in meter.summary()
    meter.reset()
    assert meter.confusion.sum() == 0


def test_meter_takes_scores():
    scores = np.zeros((1, 3, 2, 2), np.float32)
    scores[0, 2] = 1.0  # class 2 everywhere
    scores[0, 0, 0, 0] = 5.0  # except the first pixel
    meter = SegmentationMeter(3)
    meter.update(scores, np.array([[[0, 2], [1, 2]]]))
    np.testing.assert_array_equal(meter.confusion, [[1, 0, 0], [0, 0, 1], [0, 0, 2]])
    with pytest.raises(ValueError, match="expected num_classes=4"):
        SegmentationMeter(4).update(scores, np.zeros((1, 2, 2), np.int64))


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)
    with pytest.raises(ValueError, match="target contains label 3"):
        confusion_matrix(np.zeros(4, int), np.array([0, 1, 3, 0]), 3)
    with pytest.raises(ValueError, match="pred contains label -1"):
        confusion_matrix(np.array([0, -1]), np.array([0, 0]), 3)
    with pytest.raises(ValueError, match="target contains label 255"):
        confusion_matrix(np.zeros(2, int), np.array([0, 255]), 3)  # forgot ignore_index
    with pytest.raises(TypeError, match="argmax"):
        confusion_matrix(np.zeros(2, np.float32), np.zeros(2, int), 3)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        confusion_matrix(np.zeros(2, int), np.zeros(2, int), 2.0)
    with pytest.raises(ValueError, match="num_classes is required"):
        mean_iou(np.zeros(2, int), np.zeros(2, int))
    with pytest.raises(ValueError, match="square confusion matrix"):
        iou_per_class(np.zeros((2, 3)))
    # a confusion matrix holds counts: a negative or NaN entry once gave a plausible mIoU (0.2)
    with pytest.raises(ValueError, match=r"cm \(cm_or_pred\) must hold counts .*got -1"):
        mean_iou(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="must hold counts .*got nan"):
        iou_per_class(np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="cm .* must hold counts, got dtype <U1"):
        mean_iou(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="class_names"):
        SegmentationMeter(3, class_names=["a"])
