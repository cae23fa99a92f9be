"""COCO box / mask AP: hand-computed answers (always run) and pycocotools as the oracle."""

import contextlib
import io

import numpy as np
import pytest

from minidense.metrics.coco import (
    STAT_NAMES,
    COCOEvaluator,
    box_iou_xywh,
    coco_ap,
    format_table,
    mask_iou,
)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _pred(boxes, scores, labels, masks=None):
    p = {
        "boxes": np.asarray(boxes, np.float64).reshape(-1, 4),
        "scores": np.asarray(scores, np.float64),
        "labels": np.asarray(labels, np.int64),
    }
    if masks is not None:
        p["masks"] = np.asarray(masks, bool)
    return p


def _target(boxes, labels, masks=None):
    t = {
        "boxes": np.asarray(boxes, np.float64).reshape(-1, 4),
        "labels": np.asarray(labels, np.int64),
    }
    if masks is not None:
        t["masks"] = np.asarray(masks, bool)
    return t


def _box_from_mask(m):
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0]


def _random_boxes(rng, n, size):
    wh = np.exp(rng.uniform(np.log(3), np.log(0.7 * size), (n, 2)))
    xy = rng.uniform(0, size - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def random_box_scene(rng, n_images=25, n_classes=3, size=256, tie_prob=0.3):
    """Detections jittered from the ground truth, wrong labels, false positives, score ties, and
    label ``n_classes`` that only ever appears in detections (a category without ground truth)."""
    preds, targets = [], []
    for _ in range(n_images):
        G = int(rng.choice([0, 1, 3, 6]))
        gt = _random_boxes(rng, G, size)
        gl = rng.integers(0, n_classes, G)
        boxes, labels = [], []
        for box, lab in zip(gt, gl, strict=True):
            for _ in range(int(rng.integers(0, 3))):
                w, h = box[2] - box[0], box[3] - box[1]
                jitter = rng.normal(0, 0.12, 4) * np.array([w, h, w, h])
                b = box + jitter
                b[2:] = np.maximum(b[2:], b[:2])
                boxes.append(b)
                labels.append(lab if rng.random() < 0.85 else rng.integers(0, n_classes + 1))
        n_fp = int(rng.integers(0, 4))
        boxes.extend(_random_boxes(rng, n_fp, size))
        labels.extend(rng.integers(0, n_classes + 1, n_fp))
        if rng.random() < 0.15:  # an image with no detections at all
            boxes, labels = [], []
        scores = rng.random(len(boxes))
        if rng.random() < tie_prob:
            scores = np.round(scores, 1)  # many exact ties, within and across images
        preds.append(_pred(np.reshape(boxes, (-1, 4)), scores, np.asarray(labels, np.int64)))
        targets.append(_target(gt, gl))
    return preds, targets


def _ellipse(rng, H, W):
    yy, xx = np.mgrid[:H, :W]
    cy, cx = rng.uniform(0, H), rng.uniform(0, W)
    ry, rx = rng.uniform(2, H / 1.5), rng.uniform(2, W / 1.5)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _rectangle(rng, H, W):
    m = np.zeros((H, W), bool)
    y0, x0 = rng.integers(0, H - 2), rng.integers(0, W - 2)
    m[y0 : y0 + rng.integers(1, H), x0 : x0 + rng.integers(1, W)] = True
    return m


def random_mask_scene(rng, n_images=10, n_classes=3, H=96, W=112):
    """Random ellipses and rectangles on a non-square canvas (catches an H/W mix-up); detections
    are shifted / eroded / dilated copies, random shapes, and now and then an empty mask."""
    preds, targets = [], []
    for _ in range(n_images):
        G = int(rng.integers(0, 5))
        gm = [(_ellipse if rng.random() < 0.5 else _rectangle)(rng, H, W) for _ in range(G)]
        gl = rng.integers(0, n_classes, G)
        pm, pl = [], []
        for m, lab in zip(gm, gl, strict=True):
            for _ in range(int(rng.integers(0, 3))):
                shifted = np.roll(m, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
                if rng.random() < 0.3:  # erode or dilate by one pixel
                    grow = rng.random() < 0.5
                    nb = [np.roll(shifted, s, axis=a) for a in (0, 1) for s in (-1, 1)]
                    shifted = np.logical_or.reduce(nb) if grow else np.logical_and.reduce(nb)
                pm.append(shifted)
                pl.append(lab if rng.random() < 0.9 else rng.integers(0, n_classes))
        for _ in range(int(rng.integers(0, 3))):
            pm.append(_ellipse(rng, H, W))
            pl.append(rng.integers(0, n_classes))
        if pm and rng.random() < 0.2:
            pm[0] = np.zeros((H, W), bool)
        pm = np.asarray(pm, bool).reshape(-1, H, W)
        gm = np.asarray(gm, bool).reshape(-1, H, W)
        scores = np.round(rng.random(len(pm)), 2)
        preds.append(_pred([_box_from_mask(m) for m in pm], scores, np.asarray(pl, np.int64), pm))
        targets.append(_target([_box_from_mask(m) for m in gm], gl, gm))
    return preds, targets


def ours(preds, targets, iou_type, num_classes, image_ids):
    ev = COCOEvaluator(num_classes=num_classes, iou_type=iou_type)
    for i, p, t in zip(image_ids, preds, targets, strict=True):
        ev.add(i, p, t)
    return ev.summarize()


def pycocotools_stats(preds, targets, iou_type, num_classes, image_ids, hw=(256, 256)):
    """pycocotools' 12 stats on the same data, fed the same 'area' values as we use."""
    mask_api = pytest.importorskip("pycocotools.mask")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    H, W = hw
    images, gts, dts = [], [], []
    for img_id, p, t in zip(image_ids, preds, targets, strict=True):
        img_id = int(img_id)
        images.append({"id": img_id, "height": H, "width": W})
        for j, (box, lab) in enumerate(zip(t["boxes"], t["labels"], strict=True)):
            x1, y1, x2, y2 = (float(v) for v in box)
            ann = {
                "id": len(gts) + 1,
                "image_id": img_id,
                "category_id": int(lab),
                "iscrowd": 0,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
            }
            if "masks" in t:
                m = t["masks"][j].astype(np.uint8)
                ann["segmentation"] = mask_api.encode(np.asfortranarray(m))
                ann["area"] = float(m.sum())
            gts.append(ann)
        for j in range(len(p["scores"])):
            det = {
                "image_id": img_id,
                "category_id": int(p["labels"][j]),
                "score": float(p["scores"][j]),
            }
            if iou_type == "bbox":
                x1, y1, x2, y2 = (float(v) for v in p["boxes"][j])
                det["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            else:
                m = p["masks"][j].astype(np.uint8)
                det["segmentation"] = mask_api.encode(np.asfortranarray(m))
            dts.append(det)
    cats = [{"id": c, "name": str(c)} for c in range(num_classes)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": gts, "categories": cats}
        gt.createIndex()
        if dts:
            dt = gt.loadRes(dts)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": images, "annotations": [], "categories": cats}
            dt.createIndex()
        E = COCOeval(gt, dt, iou_type)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats)


def assert_matches_pycocotools(preds, targets, iou_type, num_classes, rng, hw=(256, 256)):
    image_ids = rng.permutation(len(preds)) + 1  # unsorted ids: ties across images use id order
    want = pycocotools_stats(preds, targets, iou_type, num_classes, image_ids, hw)
    got = ours(preds, targets, iou_type, num_classes, image_ids)[iou_type]
    got = np.array([got[n] for n in STAT_NAMES])
    np.testing.assert_allclose(
        got, want, rtol=0, atol=1e-12, err_msg=str(dict(zip(STAT_NAMES, want, strict=True)))
    )
    return got


# ---------------------------------------------------------------------------------------------
# Hand-computed answers (no oracle needed)
# ---------------------------------------------------------------------------------------------
def _stats(preds, targets, iou_type="bbox", num_classes=None):
    return coco_ap(preds, targets, iou_type=iou_type, num_classes=num_classes)


def test_one_perfect_detection():
    s = _stats([_pred([[0, 0, 10, 10]], [0.9], [0])], [_target([[0, 0, 10, 10]], [0])])
    # Precision is tp / (tp + fp + eps) in pycocotools, so "1" is 1 - 2e-16.
    for name in ("AP", "AP50", "AP75", "APs", "AR1", "AR10", "AR100", "ARs"):
        assert s[name] == pytest.approx(1.0, abs=1e-12), name
    # Area 100 is small: no medium or large ground truth, so those are undefined.
    assert s["APm"] == s["APl"] == s["ARm"] == s["ARl"] == -1.0


def test_iou_062_matches_three_thresholds_of_ten():
    # IoU = 62 / 100 = 0.62 ≥ 0.50, 0.55, 0.60 and < 0.65: precision 1 at 3 thresholds, 0 at 7.
    s = _stats([_pred([[0, 0, 10, 6.2]], [0.9], [0])], [_target([[0, 0, 10, 10]], [0])])
    assert s["AP50"] == pytest.approx(1.0, abs=1e-12) and s["AP75"] == 0.0
    assert s["AP"] == pytest.approx(0.3, abs=1e-12)
    assert s["AR100"] == pytest.approx(0.3, abs=1e-12)


def test_half_recall_reads_51_of_101_points():
    # One of two objects found: precision 1 up to recall 0.50 (points 0.00..0.50), then 0.
    pred = _pred([[0, 0, 10, 10]], [0.9], [0])
    target = _target([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0])
    s = _stats([pred], [target])
    assert s["AP"] == pytest.approx(51 / 101, abs=1e-12)
    assert s["AR100"] == 0.5


def test_false_positive_ranked_first_halves_precision():
    # Ranked FP then TP: precision [0, 1/2], made monotone → 1/2 at every recall point.
    pred = _pred([[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])
    s = _stats([pred], [_target([[0, 0, 10, 10]], [0])])
    assert s["AP"] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("tp_first, expected", [(True, 1.0), (False, 0.5)])
def test_score_ties_keep_the_given_order(tp_first, expected):
    boxes = [[0, 0, 10, 10], [50, 50, 60, 60]]  # TP, FP with the same score
    if not tp_first:
        boxes = boxes[::-1]
    s = _stats([_pred(boxes, [0.5, 0.5], [0, 0])], [_target([[0, 0, 10, 10]], [0])])
    assert s["AP"] == pytest.approx(expected, abs=1e-12)


def test_categories_without_ground_truth_are_left_out():
    # Class 0 found perfectly; class 1 has detections but no ground truth; class 2 nothing at all.
    pred = _pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.95], [0, 1])
    target = _target([[0, 0, 10, 10]], [0])
    ev = COCOEvaluator(num_classes=3)
    ev.add(0, pred, target)
    assert ev.summarize()["bbox"]["AP"] == pytest.approx(1.0, abs=1e-12)
    assert ev.per_class_ap()["bbox"] == pytest.approx({0: 1.0, 1: -1.0, 2: -1.0}, abs=1e-12)


def test_missed_class_counts_as_zero():
    pred = _pred([[0, 0, 10, 10]], [0.9], [0])
    target = _target([[0, 0, 10, 10], [40, 40, 50, 50]], [0, 1])
    assert _stats([pred], [target])["AP"] == pytest.approx(0.5, abs=1e-12)


def test_no_ground_truth_anywhere_is_minus_one():
    s = _stats([_pred([[0, 0, 10, 10]], [0.9], [0])], [_target(np.zeros((0, 4)), [])])
    assert all(v == -1.0 for v in s.values())
    empty = COCOEvaluator(iou_type=("bbox", "segm")).summarize()  # no images at all
    assert all(v == -1.0 for r in empty.values() for v in r.values())


def test_no_detections_anywhere_is_zero():
    s = _stats([_pred(np.zeros((0, 4)), [], [])], [_target([[0, 0, 10, 10]], [0])])
    assert s["AP"] == 0.0 and s["AR100"] == 0.0


def test_max_100_detections_cut_per_image_and_category():
    target = _target([[0, 0, 10, 10]], [0])
    fp = np.tile([[100.0, 100, 110, 110]], (100, 1))
    # 100 FPs of class 0 scored above the TP: the TP is the 101st of its class → dropped.
    pred = _pred(np.vstack([fp, [[0, 0, 10, 10]]]), np.r_[np.full(100, 0.9), 0.1], np.zeros(101))
    assert _stats([pred], [target])["AP"] == 0.0
    # 60 + 60 FPs of two classes above the TP: 121 in the image, but the TP is 61st of class 0.
    labels = np.r_[np.zeros(60), np.ones(60), 0].astype(np.int64)
    pred = _pred(
        np.vstack([fp[:60], fp[:60], [[0, 0, 10, 10]]]), np.r_[np.full(120, 0.9), 0.1], labels
    )
    s = _stats([pred], [target])
    assert s["AR100"] == 1.0 and s["AR10"] == 0.0
    assert s["AP"] == pytest.approx(1 / 61, rel=1e-9)


def test_area_range_bounds_are_inclusive():
    # 32x32 = 1024 is both small and medium in pycocotools; 96x96 both medium and large.
    for side, defined in ((32, ("APs", "APm")), (96, ("APm", "APl"))):
        box = [[0, 0, side, side]]
        s = _stats([_pred(box, [0.9], [0])], [_target(box, [0])])
        for name in ("APs", "APm", "APl"):
            assert s[name] == pytest.approx(1.0 if name in defined else -1.0, abs=1e-12)


def test_detection_on_out_of_range_gt_is_ignored_not_false_positive():
    # For "small", the large gt is ignored; a det matching it must not count as FP.
    target = _target([[0, 0, 10, 10], [100, 100, 200, 200]], [0, 0])
    pred = _pred([[100, 100, 200, 200], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])
    s = _stats([pred], [target])
    assert [s["APs"], s["APl"], s["AP"]] == pytest.approx([1.0] * 3, abs=1e-12)


def test_segm_perfect_and_half_overlap():
    H, W = 20, 30
    gt = np.zeros((1, H, W), bool)
    gt[0, 2:12, 3:13] = True  # 100 pixels
    half = np.zeros_like(gt)
    half[0, 2:12, 3:8] = True  # 50 pixels inside: IoU 0.5 exactly → matched at 0.50 only
    for m, ap in ((gt, 1.0), (half, 0.1)):
        pred = _pred([_box_from_mask(m[0])], [0.7], [0], m)
        s = _stats([pred], [_target([_box_from_mask(gt[0])], [0], gt)], iou_type="segm")
        assert s["AP"] == pytest.approx(ap, abs=1e-12)


def test_box_iou_matches_formula():
    d = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [20, 20, 1, 1], [0, 0, 0, 0]], float)
    g = np.array([[0, 0, 10, 10], [10, 0, 5, 5]], float)
    want = np.array([[1, 0], [25 / 175, 0], [0, 0], [0, 0]])  # touching edges → 0
    np.testing.assert_allclose(box_iou_xywh(d, g), want, atol=1e-15)


def test_mask_iou_matches_loop_reference():
    rng = np.random.default_rng(0)
    a = rng.random((5, 13, 17)) < 0.3
    b = rng.random((4, 13, 17)) < 0.5
    a[0] = False  # an empty mask gives 0, not 0/0
    want = np.zeros((5, 4))
    for i in range(5):
        for j in range(4):
            inter = np.sum(a[i] & b[j])
            want[i, j] = inter / np.sum(a[i] | b[j]) if inter else 0.0
    np.testing.assert_allclose(mask_iou(a, b), want, atol=1e-15)
    assert mask_iou(a[:0], b).shape == (0, 4) and mask_iou(a, b[:0]).shape == (5, 0)


def test_accepts_objects_with_numpy_method():
    class Wrapped:
        def __init__(self, a):
            self.a = np.asarray(a)

        def numpy(self):
            return self.a

    pred = {k: Wrapped(v) for k, v in _pred([[0, 0, 10, 10]], [0.9], [0]).items()}
    target = {k: Wrapped(v) for k, v in _target([[0, 0, 10, 10]], [0]).items()}
    assert coco_ap([pred], [target])["AP"] == pytest.approx(1.0, abs=1e-12)


def test_format_table_prints_percent_and_dash():
    ev = COCOEvaluator(iou_type=("bbox", "segm"))
    m = np.zeros((1, 20, 20), bool)
    m[0, :10, :10] = True
    ev.add(0, _pred([[0, 0, 10, 10]], [0.9], [0], m), _target([[0, 0, 10, 10]], [0], m))
    res = ev.summarize()
    assert set(res) == {"bbox", "segm"} and res["segm"]["AP"] == pytest.approx(1.0)
    table = format_table(res)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["AP", "AP50", "AP75"]
    assert lines[1].split()[:2] == ["bbox", "100.0"] and "-" in lines[1].split()
    assert format_table(res["bbox"]).splitlines()[1].split()[0] == "100.0"


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------
def _good():
    m = np.zeros((1, 8, 8), bool)
    m[0, :4, :4] = True
    return _pred([[0, 0, 4, 4]], [0.9], [0], m), _target([[0, 0, 4, 4]], [0], m)


@pytest.mark.parametrize(
    "side, key, value, match",
    [
        ("pred", "boxes", np.zeros((1, 3)), r"pred\['boxes'\] of image 7: expected shape \(N, 4\)"),
        ("pred", "boxes", [[5.0, 0, 4, 4]], r"pred\['boxes'\] of image 7: .*x2 >= x1"),
        ("target", "boxes", [[0.0, np.nan, 4, 4]], r"target\['boxes'\] of image 7: .*NaN"),
        ("pred", "boxes", np.zeros((2, 4)), r"pred\['boxes'\] of image 7: expected 1 boxes"),
        ("pred", "scores", [np.nan], r"pred\['scores'\] of image 7: .*NaN"),
        ("pred", "labels", np.array([0.0]), r"pred\['labels'\] of image 7: expected integer"),
        ("target", "labels", np.array([-1]), r"target\['labels'\] of image 7: labels must be"),
        ("pred", "labels", np.array([0, 1]), r"pred\['labels'\] of image 7: expected 1 entries"),
        ("pred", "masks", np.zeros((1, 9, 8), bool), r"masks of image 7: sizes disagree"),
        ("pred", "masks", np.full((1, 8, 8), 0.7), r"pred\['masks'\] of image 7: .*binary"),
        ("target", "masks", np.zeros((2, 8, 8), bool), r"target\['masks'\] of image 7: expected 1"),
        ("target", "masks", None, r"target\['masks'\] of image 7 is required"),
        ("pred", "scores", None, r"pred\['scores'\] of image 7 is required"),
        ("target", "iscrowd", np.array([1]), r"target\['iscrowd'\] of image 7: crowds"),
    ],
)
def test_bad_inputs_raise_naming_field_and_image(side, key, value, match):
    pred, target = _good()
    (pred if side == "pred" else target)[key] = value
    ev = COCOEvaluator(num_classes=2, iou_type=("bbox", "segm"))
    with pytest.raises(ValueError, match=match):
        ev.add(7, pred, target)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="iou_type"):
        COCOEvaluator(iou_type="keypoints")
    with pytest.raises(ValueError, match="num_classes"):
        COCOEvaluator(num_classes=0)
    pred, target = _good()
    ev = COCOEvaluator(num_classes=1)
    with pytest.raises(ValueError, match=r"labels must be >= 0 and < num_classes=1"):
        ev.add(0, _pred([[0, 0, 4, 4]], [0.9], [1]), target)
    with pytest.raises(ValueError, match="image_size"):
        COCOEvaluator(iou_type="segm").add(0, pred, target, image_size=(8, 9))
    ev.add(0, pred, target)
    with pytest.raises(ValueError, match="already added"):
        ev.add(0, pred, target)
    with pytest.raises(ValueError, match="image_id"):
        ev.add("a.jpg", pred, target)
    with pytest.raises(TypeError, match="pred of image 3: expected a dict"):
        ev.add(3, [1, 2], target)
    with pytest.raises(ValueError, match="equal lengths"):
        coco_ap([pred], [])


# ---------------------------------------------------------------------------------------------
# pycocotools as the oracle
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_box_ap_matches_pycocotools_random(seed):
    rng = np.random.default_rng(seed)
    preds, targets = random_box_scene(rng)
    got = assert_matches_pycocotools(preds, targets, "bbox", 4, rng)
    assert 0 < got[0] < 1  # a non-trivial AP, so the comparison means something


def test_box_ap_matches_pycocotools_many_detections_and_boundaries():
    rng = np.random.default_rng(10)
    preds, targets = random_box_scene(rng, n_images=6)
    # An image with > 100 detections of one class, and one with 80 + 80 of two classes.
    for labels in (np.zeros(150, np.int64), np.repeat([0, 1], 80)):
        gt = _random_boxes(rng, 12, 256)
        gl = rng.integers(0, 2, 12)
        dets = np.vstack([gt + rng.normal(0, 3, gt.shape), _random_boxes(rng, len(labels), 256)])
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2])
        dl = np.r_[gl, labels]
        preds.append(_pred(dets, rng.random(len(dl)), dl))
        targets.append(_target(gt, gl))
    # Areas exactly at 32² and 96², matched exactly and at IoU exactly 0.5.
    edge = np.array([[0, 0, 32, 32], [100, 100, 196, 196], [40, 40, 72, 72]], float)
    preds.append(
        _pred([[0, 0, 32, 32], [100, 100, 196, 148], [40, 40, 72, 72]], [0.3] * 3, [0, 1, 2])
    )
    targets.append(_target(edge, [0, 1, 2]))
    assert_matches_pycocotools(preds, targets, "bbox", 4, rng)


def test_box_ap_matches_pycocotools_perfect_predictions():
    rng = np.random.default_rng(5)
    _, targets = random_box_scene(rng, n_images=12)
    preds = [_pred(t["boxes"], rng.random(len(t["labels"])), t["labels"]) for t in targets]
    got = assert_matches_pycocotools(preds, targets, "bbox", 4, rng)
    assert got[:3] == pytest.approx([1.0] * 3, abs=1e-12)


def test_box_ap_matches_pycocotools_no_detections_at_all():
    rng = np.random.default_rng(6)
    _, targets = random_box_scene(rng, n_images=5)
    preds = [_pred(np.zeros((0, 4)), [], []) for _ in targets]
    got = assert_matches_pycocotools(preds, targets, "bbox", 4, rng)
    assert got[0] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_ap_matches_pycocotools_random(seed):
    rng = np.random.default_rng(100 + seed)
    preds, targets = random_mask_scene(rng)
    got = assert_matches_pycocotools(preds, targets, "segm", 3, rng, hw=(96, 112))
    assert 0 < got[0] < 1


def test_box_ap_with_mask_areas_matches_pycocotools():
    # Box AP when targets carry masks: gt areas are mask areas, as in COCO's annotations.
    rng = np.random.default_rng(200)
    preds, targets = random_mask_scene(rng, n_images=8)
    assert_matches_pycocotools(preds, targets, "bbox", 3, rng, hw=(96, 112))


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_iou_tie_between_ground_truths_goes_to_the_later_one(order):
    # det1 overlaps gts A and B with the same IoU 80/120; pycocotools gives it the later gt.
    # det2 (lower score) only fits A. Gt order [A, B]: det1 → B, det2 → A, both true positives.
    # Order [B, A]: det1 → A and det2 is left without a match.
    gts = np.array([[0, 0, 10, 10], [4, 0, 14, 10]], float)[list(order)]
    pred = _pred([[2, 0, 12, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])
    rng = np.random.default_rng(0)
    got = assert_matches_pycocotools([pred], [_target(gts, [0, 0])], "bbox", 1, rng)
    assert got[1] == pytest.approx(1.0 if order == (0, 1) else 51 / 101, abs=1e-12)
