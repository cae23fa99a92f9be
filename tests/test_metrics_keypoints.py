"""COCO keypoint AP (OKS): hand-computed answers (always run) and pycocotools as the oracle."""

import contextlib
import io

import numpy as np
import pytest

from minidense.metrics.keypoints import (
    KEYPOINT_STAT_NAMES,
    SHAPE_SIGMAS,
    KeypointEvaluator,
    keypoint_ap,
    oks,
)

COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10  # fmt: skip


def _target(keypoints, labels, boxes, masks=None):
    t = {"keypoints": np.asarray(keypoints, np.float64), "labels": np.asarray(labels, np.int64),
         "boxes": np.asarray(boxes, np.float64).reshape(-1, 4)}  # fmt: skip
    if masks is not None:
        t["masks"] = np.asarray(masks, bool)
    return t


def _pred(keypoints, scores, labels):
    return {"keypoints": np.asarray(keypoints, np.float64), "scores": np.asarray(scores, float),
            "labels": np.asarray(labels, np.int64)}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Hand-computed answers
# ---------------------------------------------------------------------------------------------
SQUARE = np.array([[30.0, 10, 2], [30, 30, 2], [10, 30, 2], [10, 10, 2]])  # a 20×20 square
SQUARE_BOX = [10.0, 10, 30, 30]  # area 400 (small)


def test_oks_is_the_mean_of_gaussians_over_labelled_keypoints():
    dt = SQUARE[None, :, :2] + np.array([[1.0, 0], [0, 2], [0, 0], [50, 50]])  # last one far off
    gt = SQUARE.copy()
    gt[3, 2] = 0  # not labelled: its huge error does not count
    area = 400.0
    want = np.mean([np.exp(-(d**2) / (2 * area * (2 * 0.05) ** 2)) for d in (1.0, 2.0, 0.0)])
    got = oks(dt, gt[None], [area], [[10.0, 10, 20, 20]], SHAPE_SIGMAS)
    assert got.shape == (1, 1) and got[0, 0] == pytest.approx(want, abs=1e-15)


def test_oks_without_labelled_keypoints_measures_distance_outside_the_doubled_box():
    gt = np.zeros((1, 4, 3))  # nothing labelled; box (x 10, y 10, w 20, h 20) → doubled -10..50
    inside = np.full((1, 4, 2), 40.0)  # every keypoint within the doubled box: OKS 1
    outside = np.array([[[55.0, 40], [40, 60], [40, 40], [40, 40]]])  # 5 and 10 px beyond it
    box, area = [[10.0, 10, 20, 20]], [400.0]
    assert oks(inside, gt, area, box, SHAPE_SIGMAS)[0, 0] == 1.0
    e = np.array([25.0, 100, 0, 0]) / (2 * 0.05) ** 2 / (400 + np.spacing(1)) / 2
    assert oks(outside, gt, area, box, SHAPE_SIGMAS)[0, 0] == np.mean(np.exp(-e))


def test_one_exact_detection_and_the_undefined_ranges():
    s = keypoint_ap(
        [_pred(SQUARE[None, :, :2], [0.9], [1])], [_target(SQUARE[None], [1], [SQUARE_BOX])]
    )
    assert s["AP"] == pytest.approx(1.0, abs=1e-12) and s["AR"] == 1.0
    # Area 400 is neither medium nor large: both are undefined (-1), as pycocotools says.
    assert s["APm"] == s["APl"] == s["ARm"] == s["ARl"] == -1.0


def test_error_of_one_oks_threshold():
    # Every keypoint off by d: OKS = exp(-d²/(8σ²·area)); pick d for OKS 0.72, which passes the
    # thresholds 0.50 ... 0.70 (5 of 10) and fails 0.75 and above.
    d = np.sqrt(-np.log(0.72) * 8 * 0.05**2 * 400)
    dt = SQUARE[None, :, :2] + np.array([d, 0.0])
    s = keypoint_ap([_pred(dt, [0.9], [1])], [_target(SQUARE[None], [1], [SQUARE_BOX])])
    assert s["AP50"] == pytest.approx(1.0, abs=1e-12) and s["AP75"] == 0.0
    assert s["AP"] == pytest.approx(0.5, abs=1e-12) and s["AR50"] == 1.0 and s["AR75"] == 0.0


def test_ignored_ground_truth_absorbs_its_detection():
    # Two squares, the second with no labelled keypoint: it is ignored, so the detection that
    # matches it is neither a true nor a false positive, and recall counts one object only.
    hidden = SQUARE.copy()
    hidden[:, :2] += 100
    hidden[:, 2] = 0
    target = _target([SQUARE, hidden], [1, 1], [SQUARE_BOX, [110.0, 110, 130, 130]])
    pred = _pred([hidden[:, :2] + 5, SQUARE[:, :2]], [0.9, 0.8], [1, 1])  # ranked first
    s = keypoint_ap([pred], [target])
    assert s["AP"] == pytest.approx(1.0, abs=1e-12) and s["AR"] == 1.0


def test_only_twenty_detections_an_image_count():
    # 25 false positives outrank the true one: it is cut, and nothing is found.
    far = np.full((25, 4, 2), 200.0)
    pred = _pred(np.concatenate([far, SQUARE[None, :, :2]]), np.r_[np.full(25, 0.9), 0.5], [1] * 26)
    s = keypoint_ap([pred], [_target(SQUARE[None], [1], [SQUARE_BOX])])
    assert s["AP"] == 0.0 and s["AR"] == 0.0


def test_bad_input_is_named():
    ev = KeypointEvaluator()
    with pytest.raises(ValueError, match=r"pred\['keypoints'\].*\(1, 4, 3\)"):
        ev.add(0, _pred(np.zeros((1, 3, 2)), [0.5], [1]), _target(SQUARE[None], [1], [SQUARE_BOX]))
    with pytest.raises(ValueError, match=r"target\['keypoints'\].*NaN"):
        ev.add(1, _pred(SQUARE[None, :, :2], [0.5], [1]),
               _target(np.full((1, 4, 3), np.nan), [1], [SQUARE_BOX]))  # fmt: skip
    with pytest.raises(ValueError, match=r"target\['boxes'\].*required"):
        ev.add(2, _pred(SQUARE[None, :, :2], [0.5], [1]),
               {"keypoints": SQUARE[None], "labels": np.array([1])})  # fmt: skip
    with pytest.raises(ValueError, match="sigmas"):
        KeypointEvaluator(sigmas=[0.05, -1])
    with pytest.raises(ValueError, match="crowds"):
        ev.add(3, _pred(SQUARE[None, :, :2], [0.5], [1]),
               dict(_target(SQUARE[None], [1], [SQUARE_BOX]), iscrowd=np.array([1])))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# pycocotools as the oracle
# ---------------------------------------------------------------------------------------------
def random_keypoint_scene(rng, n_images=30, K=4, n_classes=3):
    """Objects of all sizes (small to large) with K keypoints, some occluded (v = 1), some
    unlabelled (v = 0), some with none labelled (ignored); detections jittered by a fraction of
    the object's size, wrong labels, false positives, score ties, images with more than 20
    detections and images without any."""
    preds, targets = [], []
    for _ in range(n_images):
        G = int(rng.choice([0, 1, 2, 5]))
        size = np.exp(rng.uniform(np.log(8), np.log(200), G))
        xy = rng.uniform(0, 300, (G, 2))
        boxes = np.concatenate([xy, xy + size[:, None] * rng.uniform(0.6, 1.4, (G, 2))], axis=1)
        kp = np.zeros((G, K, 3))
        kp[:, :, :2] = boxes[:, None, :2] + rng.random((G, K, 2)) * (
            boxes[:, None, 2:] - boxes[:, None, :2]
        )
        kp[:, :, 2] = rng.choice([0, 1, 2], (G, K), p=[0.2, 0.2, 0.6])
        kp[rng.random(G) < 0.15, :, 2] = 0  # nothing labelled: ignored
        kp[kp[:, :, 2] == 0, :2] = 0  # COCO stores unlabelled keypoints as (0, 0, 0)
        labels = rng.integers(0, n_classes, G)
        dts, dl = [], []
        for g in range(G):
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, rng.choice([0.02, 0.08, 0.3]), (K, 2)) * size[g]
                dts.append(np.where(kp[g, :, 2:] > 0, kp[g, :, :2], boxes[g, :2]) + jitter)
                dl.append(labels[g] if rng.random() < 0.85 else rng.integers(0, n_classes))
        n_fp = int(rng.choice([0, 2, 24]))
        dts += list(rng.uniform(0, 300, (n_fp, K, 2)))
        # 24 of one class: more than 20 detections of a category in an image, so the cut matters.
        dl += (
            list(rng.integers(0, n_classes, n_fp))
            if n_fp < 24
            else [int(rng.integers(n_classes))] * n_fp
        )
        scores = rng.random(len(dts))
        if rng.random() < 0.3:
            scores = np.round(scores, 1)  # ties, within and across images
        preds.append(_pred(np.reshape(dts, (-1, K, 2)), scores, dl))
        targets.append(_target(kp, labels, boxes))
    return preds, targets


def pycocotools_keypoint_stats(preds, targets, sigmas, num_classes, image_ids):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, gts, dts = [], [], []
    for img_id, p, t in zip(image_ids, preds, targets, strict=True):
        images.append({"id": int(img_id), "height": 400, "width": 400})
        for kp, lab, (x1, y1, x2, y2) in zip(t["keypoints"], t["labels"], t["boxes"], strict=True):
            gts.append({"id": len(gts) + 1, "image_id": int(img_id), "category_id": int(lab),
                        "iscrowd": 0, "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1), "keypoints": kp.ravel().tolist(),
                        "num_keypoints": int((kp[:, 2] > 0).sum())})  # fmt: skip
        for kp, s, lab in zip(p["keypoints"], p["scores"], p["labels"], strict=True):
            rows = np.concatenate([kp, np.ones((len(kp), 1))], axis=1)
            dts.append({"image_id": int(img_id), "category_id": int(lab), "score": float(s),
                        "keypoints": rows.ravel().tolist()})  # fmt: skip
    cats = [{"id": c, "name": str(c)} for c in range(num_classes)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": gts, "categories": cats}
        gt.createIndex()
        E = COCOeval(gt, gt.loadRes(dts), "keypoints")
        E.params.kpt_oks_sigmas = np.asarray(sigmas)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats)


@pytest.mark.parametrize("seed, K, sigmas", [(0, 4, SHAPE_SIGMAS), (1, 4, SHAPE_SIGMAS),
                                             (2, 17, COCO_SIGMAS)])  # fmt: skip
def test_matches_pycocotools(seed, K, sigmas):
    rng = np.random.default_rng(seed)
    preds, targets = random_keypoint_scene(rng, K=K)
    ids = rng.permutation(len(preds)) + 1  # unsorted ids: ties across images go by id
    want = pycocotools_keypoint_stats(preds, targets, sigmas, 3, ids)
    ev = KeypointEvaluator(num_classes=3, sigmas=sigmas)
    for i, p, t in zip(ids, preds, targets, strict=True):
        ev.add(i, p, t)
    got = ev.summarize()
    got = np.array([got[n] for n in KEYPOINT_STAT_NAMES])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12,
                               err_msg=str(dict(zip(KEYPOINT_STAT_NAMES, want, strict=True))))  # fmt: skip
    assert (want[[0, 3, 4]] > 0).all()  # the scene reaches every area range


def test_mask_area_is_the_ground_truth_area():
    # With masks, OKS scales by the mask's pixel count (COCO's segmentation area), not the box's.
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 10:30, 10:20] = True  # 200 px in a 20×20 box
    dt = SQUARE[None, :, :2] + 1.0
    with_mask = keypoint_ap(
        [_pred(dt, [0.9], [1])], [_target(SQUARE[None], [1], [SQUARE_BOX], mask)]
    )
    by_box = keypoint_ap([_pred(dt, [0.9], [1])], [_target(SQUARE[None], [1], [SQUARE_BOX])])
    err = 2 / (8 * 0.05**2)  # d² = 2 for every keypoint
    assert np.exp(-err / 200) < 0.75 < np.exp(-err / 400)
    assert with_mask["AP75"] == 0.0 and by_box["AP75"] == pytest.approx(1.0, abs=1e-12)
