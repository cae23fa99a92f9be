"""Box utilities: NMS against a plain greedy reference, IoU/area/clip/filter by hand, BoxCoder."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_roi import iou_ref, nms_ref

import minidense
from minidense.ops.boxes import (
    BoxCoder,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)


def random_boxes(rng, n, extent=50.0):
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(1, extent / 2, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


# ------------------------------------------------------------------------ NMS


def test_nms_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # Box 3 (best) overlaps box 0 with IoU 0.9 -> drops it; box 1 vs box 3: IoU 72/118 > 0.5.
    keep = nms(boxes, scores, 0.5)
    assert keep.dtype == np.int64
    assert keep.tolist() == [3, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]


def test_nms_iou_equal_to_threshold_is_kept():
    boxes = np.array([[0, 0, 4, 1], [0, 0, 2, 1.0]])  # IoU = 2 / 4 = 0.5
    assert nms(boxes, [1.0, 0.5], 0.5).tolist() == [0, 1]
    assert nms(boxes, [1.0, 0.5], 0.49).tolist() == [0]


def test_nms_ties_keep_input_order():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1.0]])
    assert nms(boxes, [0.5, 0.5, 0.5], 0.5).tolist() == [0, 1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 40), thr=st.sampled_from((0.0, 0.3, 0.7)))
def test_nms_matches_greedy_reference(seed, n, thr):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n)
    scores = rng.integers(0, 5, size=n) / 4.0  # many ties
    assert nms(boxes, scores, thr).tolist() == nms_ref(boxes, scores, thr)
    cats = rng.integers(0, 3, size=n)
    assert batched_nms(boxes, scores, cats, thr).tolist() == nms_ref(boxes, scores, thr, cats)


def test_batched_nms_separates_categories_even_with_negative_coordinates():
    boxes = np.array([[-10, -10, -2, -2], [-10, -10, -2, -2], [-10, -10, -2, -2.0]])
    keep = batched_nms(boxes, np.array([0.3, 0.9, 0.5]), np.array([0, 0, 1]), 0.5)
    assert keep.tolist() == [1, 2]


def test_nms_accepts_tensors_and_float32_and_empty():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 20).astype(np.float32)
    scores = rng.random(20).astype(np.float32)
    expected = nms(boxes, scores, 0.4)
    np.testing.assert_array_equal(
        nms(minidense.tensor(boxes), minidense.tensor(scores), 0.4), expected
    )
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).dtype == np.int64


def test_nms_zero_area_boxes_suppress_nothing():
    boxes = np.array([[1, 1, 1, 1], [1, 1, 1, 1.0]])  # IoU = 0 / 0
    assert nms(boxes, [0.9, 0.8], 0.1).tolist() == [0, 1]


def test_nms_bad_inputs():
    boxes = np.array([[0, 0, 1, 1.0]])
    with pytest.raises(ValueError, match=r"boxes must have shape \(K, 4\)"):
        nms(np.zeros((2, 5)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"scores must have shape \(1,\)"):
        nms(boxes, np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="scores contains NaN"):
        nms(boxes, np.array([np.nan]), 0.5)
    with pytest.raises(ValueError, match="boxes row 0 is not finite"):
        nms(np.array([[0, 0, np.inf, 1]]), np.ones(1), 0.5)
    with pytest.raises(ValueError, match="iou_threshold must be a finite number"):
        nms(boxes, np.ones(1), None)
    with pytest.raises(ValueError, match="idxs must hold integer"):
        batched_nms(boxes, np.ones(1), np.array([0.5]), 0.5)
    with pytest.raises(TypeError, match="boxes must be numeric"):
        nms(np.array([["a", "b", "c", "d"]]), np.ones(1), 0.5)


# ------------------------------------------------------------------------ IoU, area, clip, filter


def test_box_iou_and_area_by_hand():
    a = np.array([[0, 0, 2, 2], [1, 1, 3, 4.0]])
    b = np.array([[1, 1, 2, 2], [5, 5, 6, 6], [0, 0, 2, 2.0]])
    np.testing.assert_array_equal(box_area(a), [4, 6])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1 / 4, 0, 1])
    np.testing.assert_allclose(iou[1], [1 / 6, 0, 1 / 9])
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 5), random_boxes(rng, 4)
    ref = [[iou_ref(p, q) for q in b] for p in a]
    np.testing.assert_allclose(box_iou(minidense.tensor(a), b), ref, rtol=1e-12)
    assert np.isnan(box_iou(np.zeros((1, 4)), np.zeros((1, 4)))[0, 0])


def test_clip_and_remove_small():
    boxes = np.array([[-5, -1, 30, 8], [2, 3, 4, 20], [1, 1, 1.5, 9]])
    clipped = clip_boxes_to_image(boxes, (10, 20))  # (height, width)
    np.testing.assert_array_equal(clipped, [[0, 0, 20, 8], [2, 3, 4, 10], [1, 1, 1.5, 9]])
    assert boxes[0, 0] == -5  # the input is not modified
    keep = remove_small_boxes(clipped, 2.0)
    assert keep.dtype == np.int64 and keep.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"size must be \(height, width\)"):
        clip_boxes_to_image(boxes, 10)


# ------------------------------------------------------------------------ BoxCoder


def test_box_coder_hand_case():
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    proposal = np.array([[0, 0, 10, 20.0]])  # centre (5, 10), size 10 x 20
    target = np.array([[2, 4, 22, 24.0]])  # centre (12, 14), size 20 x 20
    d = coder.encode(target, proposal)
    np.testing.assert_allclose(d, [[10 * 7 / 10, 10 * 4 / 20, 5 * math.log(2), 0.0]])
    np.testing.assert_allclose(coder.decode(d, proposal), target, rtol=1e-12)


@pytest.mark.parametrize("weights", ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)))
def test_box_coder_round_trip(weights):
    rng = np.random.default_rng(2)
    proposals, targets = random_boxes(rng, 30), random_boxes(rng, 30)
    coder = BoxCoder(weights)
    codes = coder.encode(targets, proposals)
    np.testing.assert_allclose(coder.decode(codes, proposals), targets, rtol=1e-10, atol=1e-9)
    # Per-class codes (K, 4 * C) decode class by class.
    multi = np.concatenate([codes, np.zeros_like(codes)], axis=1)
    out = coder.decode(multi, proposals)
    assert out.shape == (30, 8)
    np.testing.assert_allclose(out[:, 4:], proposals, rtol=1e-12)


def test_box_coder_clamps_log_scale():
    coder = BoxCoder()
    box = np.array([[0, 0, 1, 1.0]])
    out = coder.decode(np.array([[0, 0, 50.0, 50.0]]), box)  # exp(50) would be absurd
    side = math.exp(math.log(1000 / 16))
    np.testing.assert_allclose(
        out, [[0.5 - side / 2, 0.5 - side / 2, 0.5 + side / 2, 0.5 + side / 2]]
    )
    assert np.isfinite(coder.decode(np.array([[0, 0, 1e4, 1e4]]), box)).all()


def test_box_coder_bad_inputs():
    coder = BoxCoder()
    with pytest.raises(ValueError, match="weights must be 4 numbers"):
        BoxCoder(weights=(1, 1, 1))
    with pytest.raises(ValueError, match="must match"):
        coder.encode(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"rel_codes must have shape \(K, 4\*C\)"):
        coder.decode(np.zeros((2, 6)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2 rel_codes rows but 3 boxes"):
        coder.decode(np.zeros((2, 4)), np.zeros((3, 4)))
    assert "weights=(1.0, 1.0, 1.0, 1.0)" in repr(coder)
