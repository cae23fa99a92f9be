"""Panoptic segmentation: PQ/SQ/RQ against a plain reference written from the paper's definitions
and on hand-built cases; the merge of stuff and things; the procedural panoptic scenes."""

import numpy as np
import pytest

from minidense.data import ShapesInstances, ShapesKeypoints, ShapesPanoptic, ShapesStuff
from minidense.data.panoptic import STUFF_CATEGORIES, THING_CATEGORIES
from minidense.metrics.panoptic import PanopticQuality, format_pq_table, match_segments
from minidense.models.panoptic import combine_panoptic

THINGS, STUFF = (1, 2), (3, 4)


def seg(segments, labels, iscrowd=None):
    """A segmentation from an id map and one category per id 1, 2, ... (in that order)."""
    segments = np.asarray(segments, dtype=np.int64)
    d = {"segments": segments, "ids": np.arange(1, len(labels) + 1), "labels": np.asarray(labels)}
    if iscrowd is not None:
        d["iscrowd"] = np.asarray(iscrowd, bool)
    return d


def pq(preds, targets, things=THINGS, stuff=STUFF):
    ev = PanopticQuality(things, stuff)
    for p, t in zip(preds, targets, strict=True):
        ev.add(p, t)
    return ev.summarize()


# ---------------------------------------------------------------------------------------------
# The reference: the paper's definitions, segment by segment, with boolean masks
# ---------------------------------------------------------------------------------------------
def reference_counts(pred, target):
    """Per category [TP, FP, FN, Σ IoU], by Kirillov et al. §4 written out plainly."""
    void = target["segments"] == 0
    crowd = lambda c: np.logical_or.reduce(  # noqa: E731
        [target["segments"] == i for i, k, z in zip(target["ids"], target["labels"],
         target.get("iscrowd", np.zeros(len(target["ids"]), bool)), strict=True) if k == c and z]
        + [np.zeros_like(void)]
    )  # fmt: skip
    crowd_ids = set(
        np.asarray(target["ids"])[
            np.asarray(target.get("iscrowd", np.zeros(len(target["ids"]), bool)))
        ].tolist()
    )
    stats = {}
    matched_p, matched_g = set(), set()
    for i, c in zip(pred["ids"], pred["labels"], strict=True):
        P = (pred["segments"] == i) & ~void  # void pixels of a prediction do not count
        for j, k in zip(target["ids"], target["labels"], strict=True):
            if k != c or j in crowd_ids:
                continue
            G = target["segments"] == j
            iou = (P & G).sum() / (P | G).sum()
            if iou > 0.5:
                assert i not in matched_p and j not in matched_g  # Theorem 1: unique
                matched_p.add(i)
                matched_g.add(j)
                s = stats.setdefault(int(c), [0, 0, 0, 0.0])
                s[0] += 1
                s[3] += iou
    for j, k in zip(target["ids"], target["labels"], strict=True):
        if j not in matched_g and j not in crowd_ids:
            stats.setdefault(int(k), [0, 0, 0, 0.0])[2] += 1
    for i, c in zip(pred["ids"], pred["labels"], strict=True):
        if i in matched_p:
            continue
        P = pred["segments"] == i
        if ((P & void).sum() + (P & crowd(c)).sum()) / P.sum() > 0.5:
            continue
        stats.setdefault(int(c), [0, 0, 0, 0.0])[1] += 1
    return stats


def reference_pq(preds, targets, things=THINGS, stuff=STUFF):
    total = {}
    for p, t in zip(preds, targets, strict=True):
        for c, s in reference_counts(p, t).items():
            acc = total.setdefault(c, [0, 0, 0, 0.0])
            for k in range(4):
                acc[k] += s[k]
    per = {}
    for c, (tp, fp, fn, iou) in total.items():
        if tp + fp + fn:
            per[c] = (
                iou / (tp + fp / 2 + fn / 2),
                iou / tp if tp else 0.0,
                tp / (tp + fp / 2 + fn / 2),
            )
    out = {}
    for name, cats in (("All", things + stuff), ("Things", things), ("Stuff", stuff)):
        seen = [per[c] for c in cats if c in per]
        out[name] = [float(np.mean([q[k] for q in seen])) if seen else -1.0 for k in range(3)]
    return out


def random_panoptic_pair(rng, H=24, W=28):
    """A ground truth of stuff bands, thing rectangles, a void strip and sometimes a crowd; a
    prediction that shifts, grows, merges, splits, relabels and invents segments."""
    gt = np.where(np.arange(H)[:, None] < rng.integers(6, 18), 1, 2) * np.ones((1, W), np.int64)
    labels = [STUFF[0], STUFF[1]]
    iscrowd = [False, False]
    for _ in range(int(rng.integers(0, 5))):
        y, x = rng.integers(0, H - 3), rng.integers(0, W - 3)
        gt[y : y + rng.integers(2, 9), x : x + rng.integers(2, 9)] = len(labels) + 1
        labels.append(int(rng.choice(THINGS)))
        iscrowd.append(bool(rng.random() < 0.15))
    if rng.random() < 0.5:
        gt[:, rng.integers(0, W) : None][:, :2] = 0  # void
    present = [i for i in range(1, len(labels) + 1) if (gt == i).any()]
    remap = np.zeros(len(labels) + 1, np.int64)
    remap[present] = np.arange(1, len(present) + 1)
    target = seg(remap[gt], [labels[i - 1] for i in present], [iscrowd[i - 1] for i in present])

    pred = np.roll(remap[gt], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    plabels = list(target["labels"])
    for _ in range(int(rng.integers(0, 4))):  # invented or overlapping segments
        y, x = rng.integers(0, H - 3), rng.integers(0, W - 3)
        pred[y : y + rng.integers(1, 10), x : x + rng.integers(1, 10)] = len(plabels) + 1
        plabels.append(int(rng.choice(THINGS + STUFF)))
    if rng.random() < 0.3:
        pred[rng.random((H, W)) < 0.1] = 0  # unassigned pixels
    for k in range(len(plabels)):
        if rng.random() < 0.15:
            plabels[k] = int(rng.choice(THINGS + STUFF))  # wrong category
    present = [i for i in range(1, len(plabels) + 1) if (pred == i).any()]
    remap = np.zeros(len(plabels) + 1, np.int64)
    remap[present] = np.arange(1, len(present) + 1)
    return seg(remap[pred], [plabels[i - 1] for i in present]), target


@pytest.mark.parametrize("seed", range(3))
def test_matches_the_reference_written_from_the_definitions(seed):
    rng = np.random.default_rng(seed)
    pairs = [random_panoptic_pair(rng) for _ in range(40)]
    preds, targets = zip(*pairs, strict=True)
    got = pq(preds, targets)
    want = reference_pq(preds, targets)
    for name in ("All", "Things", "Stuff"):
        np.testing.assert_allclose(
            [got[name][k] for k in ("PQ", "SQ", "RQ")], want[name], atol=1e-12
        )
    per = got["per_class"]
    assert any(q["FP"] for q in per.values()) and any(q["FN"] for q in per.values())
    assert 0 < got["All"]["PQ"] < 1


# ---------------------------------------------------------------------------------------------
# Hand-built cases
# ---------------------------------------------------------------------------------------------
def test_perfect_prediction_is_one_everywhere():
    t = seg([[1, 1, 2], [1, 3, 3]], [3, 1, 2])
    s = pq([t], [t])
    assert s["All"] == {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "n": 3}
    assert s["Stuff"]["n"] == 1 and s["per_class"][4]["PQ"] == -1.0  # category 4 never occurs


def test_one_thing_at_iou_0_6():
    # Ground truth: 5 pixels of a thing; prediction: 3 of them and 0 more (IoU 3/5 = 0.6).
    target = seg([[1, 1, 1, 1, 1, 0]], [1])
    pred = seg([[1, 1, 1, 0, 0, 0]], [1])
    q = pq([pred], [target])["per_class"][1]
    assert (q["TP"], q["FP"], q["FN"]) == (1, 0, 0)
    assert q["SQ"] == pytest.approx(0.6) and q["RQ"] == 1.0 and q["PQ"] == pytest.approx(0.6)


def test_iou_of_exactly_one_half_is_no_match():
    target = seg([[1, 1, 1, 1]], [1])
    pred = seg([[1, 1, 0, 0]], [1])  # IoU 2/4: not > 0.5
    q = pq([pred], [target])["per_class"][1]
    assert (q["TP"], q["FP"], q["FN"]) == (0, 1, 1) and q["PQ"] == q["SQ"] == q["RQ"] == 0.0


def test_void_pixels_leave_the_iou_and_excuse_a_false_positive():
    # The prediction spreads over 3 void pixels: IoU stays 1 (void leaves the union). A second
    # prediction lies 2/3 in void: dropped, not a false positive.
    target = seg([[1, 1, 0, 0, 0, 2, 0, 0]], [1, 2])
    pred = seg([[1, 1, 1, 1, 1, 0, 2, 2]], [1, 1])
    q = pq([pred], [target])["per_class"]
    assert (q[1]["TP"], q[1]["FP"], q[1]["FN"], q[1]["SQ"]) == (1, 0, 0, 1.0)
    assert (q[2]["TP"], q[2]["FN"]) == (0, 1)
    pred_fp = seg([[1, 1, 1, 1, 1, 0, 2, 2]], [1, 2])  # the same shape, but a category-2 thing
    stats, _ = match_segments(pred_fp, seg([[1, 1, 0, 0, 0, 2, 2, 2]], [1, 2]))
    assert stats[2][0] == 1  # 2 of 3 pixels: IoU 2/3, a match


def test_crowd_regions_are_never_matched_and_excuse_their_own_class_only():
    # A crowd of category 1 (ids 2): a category-1 prediction on it is not a FP; a category-2 one is.
    target = seg([[1, 1, 2, 2, 2, 2]], [1, 1], iscrowd=[False, True])
    on_crowd = seg([[1, 1, 2, 2, 2, 0]], [1, 1])
    q = pq([on_crowd], [target])["per_class"][1]
    assert (q["TP"], q["FP"], q["FN"]) == (1, 0, 0)
    other = seg([[1, 1, 2, 2, 2, 0]], [1, 2])
    q2 = pq([other], [target])["per_class"][2]
    assert (q2["TP"], q2["FP"], q2["FN"]) == (0, 1, 0)
    crowd_only = seg([[0, 0, 1, 1, 1, 1]], [1])  # exactly the crowd region: not a match either
    assert pq([crowd_only], [target])["per_class"][1]["TP"] == 0


def test_overall_is_the_mean_over_categories_not_sq_times_rq():
    # Category 1: one TP at IoU 0.6 (PQ 0.6); category 3 (stuff): a TP at 1 and a FN (PQ 2/3).
    target = seg([[1, 1, 1, 1, 1, 2, 3]], [1, 3, 3])
    pred = seg([[1, 1, 1, 0, 0, 2, 0]], [1, 3])
    s = pq([pred], [target])
    assert s["per_class"][3]["PQ"] == pytest.approx(1 / 1.5)
    assert s["All"]["PQ"] == pytest.approx((0.6 + 1 / 1.5) / 2)
    assert s["Things"]["PQ"] == pytest.approx(0.6) and s["Stuff"]["RQ"] == pytest.approx(1 / 1.5)
    assert s["All"]["PQ"] != pytest.approx(s["All"]["SQ"] * s["All"]["RQ"])
    assert "Things" in format_pq_table(s, {1: "square"}) and "square" in format_pq_table(
        s, {1: "square"}
    )


def test_bad_segmentations_are_named():
    t = seg([[1, 1]], [1])
    with pytest.raises(ValueError, match="must be the same"):
        pq([seg([[1, 2]], [1])], [t])  # id 2 in the map but not declared
    with pytest.raises(ValueError, match="neither things"):
        pq([seg([[1, 1]], [9])], [t])
    with pytest.raises(ValueError, match="differ in size"):
        pq([seg([[1, 1, 1]], [1])], [t])
    with pytest.raises(ValueError, match="only the ground truth"):
        pq([seg([[1, 1]], [1], iscrowd=[True])], [t])
    with pytest.raises(ValueError, match="share"):
        PanopticQuality((1, 2), (2, 3))


# ---------------------------------------------------------------------------------------------
# The merge
# ---------------------------------------------------------------------------------------------
def _instances(masks, scores, labels):
    return {
        "masks": np.asarray(masks, bool),
        "scores": np.asarray(scores, float),
        "labels": np.asarray(labels),
    }


def test_merge_places_things_by_confidence_drops_covered_ones_and_fills_stuff():
    H, W = 6, 8
    a = np.zeros((H, W), bool)
    a[1:4, 1:4] = True  # 9 px
    b = np.zeros((H, W), bool)
    b[2:5, 2:7] = True  # 15 px, 4 of them under a: kept, on the 11 free pixels
    c = np.zeros((H, W), bool)
    c[1:3, 1:3] = True  # all under a: dropped
    low = np.zeros((H, W), bool)
    low[5, 6:] = True  # below the score threshold: dropped
    semantic = np.zeros((H, W), np.int64)  # class 0: things
    semantic[:, 6:] = 1  # a stuff band of 12 px, 3 of them under b → 9 px left
    semantic[0, 0] = 2  # 1 px of another stuff class: under stuff_area, dropped
    out = combine_panoptic(_instances([b, a, c, low], [0.8, 0.9, 0.7, 0.3], [2, 1, 1, 1]),
                           semantic, stuff_categories=[0, 5, 6], stuff_area=4)  # fmt: skip
    assert out["labels"].tolist() == [1, 2, 5] and out["scores"][:2].tolist() == [0.9, 0.8]
    seg_ = out["segments"]
    assert (seg_[a] == 1).all() and (seg_[b & ~a] == 2).all()
    assert np.count_nonzero(seg_ == 3) == 9 and seg_[0, 0] == 0  # the fragment is void
    assert np.count_nonzero(seg_ == 0) == H * W - 9 - 11 - 9


def test_merge_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="one entry per detection"):
        combine_panoptic(
            _instances(np.zeros((1, 4, 4)), [0.9, 0.8], [1]), np.zeros((4, 4), int), [0, 4]
        )
    with pytest.raises(ValueError, match="index stuff_categories"):
        combine_panoptic(_instances(np.zeros((0, 4, 4)), [], []), np.full((4, 4), 3), [0, 4])


def test_merged_ground_truth_parts_score_full_marks():
    # Instances = the true masks, semantic = the true stuff map: the merge rebuilds the ground
    # truth exactly (void stays unassigned), so PQ is 1.
    ds = ShapesPanoptic(3, image_size=64, seed=5)
    stuff = ShapesStuff(3, image_size=64, seed=5)
    ev = PanopticQuality(THING_CATEGORIES, STUFF_CATEGORIES)
    for i in range(3):
        _, target, gt = ds.sample(i)
        _, label = stuff[i]
        inst = _instances(
            target["masks"], np.linspace(0.9, 0.6, len(target["labels"])), target["labels"]
        )
        merged = combine_panoptic(
            inst, label, stuff_categories=(0,) + STUFF_CATEGORIES, stuff_area=0
        )
        ev.add(merged, gt)
    s = ev.summarize()
    assert s["All"]["PQ"] == pytest.approx(1.0) and s["All"]["n"] >= 4


# ---------------------------------------------------------------------------------------------
# The scenes
# ---------------------------------------------------------------------------------------------
def test_panoptic_scenes_keep_the_things_of_the_plain_dataset():
    kw = dict(image_size=64, seed=2)
    pan, kp, plain = ShapesPanoptic(4, **kw), ShapesKeypoints(4, **kw), ShapesInstances(4, **kw)
    stuff = ShapesStuff(4, **kw)
    for i in range(4):
        image, target, gt = pan.sample(i)
        _, kt = kp[i]
        plain_image, pt = plain[i]
        for key in ("boxes", "labels", "masks", "keypoints"):
            assert np.array_equal(target[key], kt[key]), key
        things = plain_image != image
        assert things.any() and not things[:, np.asarray(pt["masks"]).any(axis=0)].any()
        s_image, label = stuff[i]
        assert np.array_equal(s_image, image)
        # Every pixel is a thing (label 0) or a stuff class; the panoptic ground truth agrees.
        for j, c in zip(gt["ids"], gt["labels"], strict=True):
            region = gt["segments"] == j
            want = 0 if c in THING_CATEGORIES else c - 3
            assert (label[region] == want).all()
        void = gt["segments"] == 0  # only the pixels of shapes too hidden to be instances
        assert (label[void] == 0).all()
        assert len(set(gt["labels"].tolist()) & set(STUFF_CATEGORIES)) >= 2
