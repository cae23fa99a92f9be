"""Keypoints: the shapes' keypoints (order, visibility, flips), the keypoint head's targets, loss
and decoding, and Mask R-CNN with a keypoint head."""

import numpy as np
import pytest

import minidense as md
from minidense import optim
from minidense.data import DataLoader, ShapesInstances, ShapesKeypoints, hflip, vflip
from minidense.data.keypoints import (
    clockwise_order,
    flip_keypoints,
    scene_keypoints,
    shape_keypoints,
)
from minidense.data.shapes import Shape, render
from minidense.models.maskrcnn import MaskRCNN
from minidense.models.maskrcnn.keypoint_head import (
    KeypointHead,
    decode_keypoints,
    expand_boxes,
    keypoint_loss,
    keypoint_targets,
)


def _scene_keypoints(shapes, size=48):
    _, owner = render(shapes, size)
    return scene_keypoints(shapes, owner, list(range(len(shapes))))


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------
def test_same_scenes_as_the_instance_dataset():
    kw = dict(image_size=64, seed=7, max_shapes=4)
    kp, plain = ShapesKeypoints(6, **kw), ShapesInstances(6, **kw)
    for i in range(6):
        (a, t), (b, u) = kp[i], plain[i]
        assert np.array_equal(a, b)
        assert all(np.array_equal(t[k], u[k]) for k in ("boxes", "labels", "masks"))
        assert t["keypoints"].shape == (len(u["labels"]), 4, 3)


def test_order_is_clockwise_from_the_top():
    square = _scene_keypoints([Shape("square", 20, 20, 8)])[0]
    assert square[:, :2].tolist() == [[28, 12], [28, 28], [12, 28], [12, 12]]  # TR BR BL TL
    circle = _scene_keypoints([Shape("circle", 20, 24, 10)])[0]
    assert circle[:, :2].tolist() == [[20, 14], [30, 24], [20, 34], [10, 24]]  # top right ...
    # A triangle with a corner at 4 o'clock (angle 30° below the x axis): 4, 8, then 12 o'clock.
    tri = Shape("triangle", 24, 24, 10, angle=np.pi / 6)
    kp = _scene_keypoints([tri])[0]
    assert kp[3].tolist() == [0, 0, 0]  # no fourth keypoint
    t = np.pi / 6 + np.array([0, 2, 4]) * np.pi / 3  # 30°, 150°, 270° (y down: 270° is the top)
    corners = np.stack([24 + 10 * np.cos(t), 24 + 10 * np.sin(t)], axis=1)
    np.testing.assert_allclose(kp[:3, :2], corners[[2, 0, 1]], atol=1e-5)
    assert clockwise_order(shape_keypoints(tri)).tolist() == [2, 0, 1]


def test_visibility_of_occluded_and_outside_keypoints():
    # A circle drawn later covers the square's bottom-right corner: that one is 1, the rest 2.
    kp = _scene_keypoints([Shape("square", 20, 20, 8), Shape("circle", 29, 29, 5)])
    assert kp[0, :, 2].tolist() == [2, 1, 2, 2] and kp[1, :, 2].tolist() == [2, 2, 2, 2]
    # A square barely touched at a corner by a later one: most of the corner's pixels are seen.
    kp = _scene_keypoints([Shape("square", 20, 20, 8), Shape("square", 31, 31, 4)])
    assert kp[0, 1, 2] == 2
    # A triangle reaching out of the image: the corner outside is labelled but not visible.
    kp = _scene_keypoints([Shape("triangle", 5, 24, 12, angle=np.pi)], size=48)
    assert kp[0, :3, 2].tolist().count(1) == 1 and kp[0, :3, 0].min() < 0


@pytest.mark.parametrize("flip, mirror", [
    (hflip, lambda s, n: Shape(s.kind, n - s.cx, s.cy, s.radius, np.pi - s.angle, s.color)),
    (vflip, lambda s, n: Shape(s.kind, s.cx, n - s.cy, s.radius, -s.angle, s.color)),
])  # fmt: skip
def test_a_flipped_sample_has_the_keypoints_of_the_mirrored_scene(flip, mirror):
    rng = np.random.default_rng(3)
    for _ in range(10):
        shapes = [Shape(str(rng.choice(["square", "circle", "triangle"])), *rng.uniform(10, 38, 2),
                        rng.uniform(5, 12), rng.uniform(0, 2 * np.pi)) for _ in range(3)]  # fmt: skip
        image, owner = render(shapes, 48)
        kept = [k for k in range(3) if (owner == k).any()]
        target = {"boxes": np.zeros((len(kept), 4), np.float32),
                  "keypoints": scene_keypoints(shapes, owner, kept)}  # fmt: skip
        _, flipped = flip(image, target)
        want = _scene_keypoints([mirror(s, 48) for s in shapes])[kept]
        np.testing.assert_allclose(flipped["keypoints"], want, atol=1e-4)


def test_the_loader_flips_keypoints_with_the_image():
    ds = ShapesKeypoints(8, image_size=48, seed=1)
    loader = DataLoader(ds, batch_size=8, hflip=True, seed=0)
    flips = loader.epoch_plan(0)[1][:, 0]
    _, targets = next(iter(loader))
    for i, t in enumerate(targets):
        want = flip_keypoints(ds[i][1]["keypoints"], 48) if flips[i] else ds[i][1]["keypoints"]
        np.testing.assert_array_equal(t["keypoints"], want)
    assert flips.any()


# ---------------------------------------------------------------------------------------------
# The head's targets, loss and decoding
# ---------------------------------------------------------------------------------------------
def test_targets_pick_the_cell_of_each_labelled_keypoint_inside_its_box():
    box = np.array([[10.0, 20, 30, 60]])  # 20 wide, 40 high: on a 4×4 map cells are 5 × 10 px
    kp = np.array([[[11, 21, 2], [29.9, 59.9, 1], [30, 60, 2], [31, 40, 2], [15, 35, 0]]], float)
    index, valid = keypoint_targets(kp, box, 4)
    assert valid.tolist() == [[True, True, True, False, False]]
    assert index[0, :3].tolist() == [0, 15, 15]  # the far edge belongs to the last cell


def test_decoding_one_hot_maps_gives_the_cell_centres():
    rng = np.random.default_rng(0)
    boxes = np.array([[4.0, 8, 36, 24], [0, 0, 56, 56]])
    kp = np.concatenate([rng.uniform(boxes[:, None, :2], boxes[:, None, 2:], (2, 3, 2)),
                         np.full((2, 3, 1), 2.0)], axis=2)  # fmt: skip
    index, valid = keypoint_targets(kp, boxes, 16)
    logits = np.full((2, 3, 16 * 16), -5.0)
    np.put_along_axis(logits, index[:, :, None], 5.0, axis=2)
    out = decode_keypoints(logits.reshape(2, 3, 16, 16), boxes)
    cell = (boxes[:, 2:] - boxes[:, :2]) / 16
    assert valid.all() and (np.abs(out[:, :, :2] - kp[:, :, :2]) <= cell[:, None] / 2 + 1e-4).all()
    assert np.allclose(out[:, :, 2], 1 / (1 + 255 * np.exp(-10.0)))


def test_loss_is_cross_entropy_over_the_cells_of_valid_maps():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4, 4))
    index = rng.integers(0, 16, (2, 3))
    valid = np.array([[True, False, True], [False, True, True]])
    flat = logits.reshape(6, 16)
    log_p = flat - np.log(np.exp(flat).sum(axis=1, keepdims=True))
    want = -np.mean(log_p[np.arange(6), index.ravel()][valid.ravel()])
    got = keypoint_loss(md.tensor(logits), index, valid)
    assert got.item() == pytest.approx(want, rel=1e-12)
    x = md.tensor(logits, requires_grad=True)
    assert md.gradcheck(lambda t: keypoint_loss(t, index, valid), [x])
    zero = keypoint_loss(md.tensor(logits, requires_grad=True), index, np.zeros_like(valid))
    assert zero.item() == 0.0


def test_the_head_learns_where_the_keypoints_are():
    md.manual_seed(0)
    rng = np.random.default_rng(2)
    head = KeypointHead(4, 8, 1, num_keypoints=2)  # 4×4 pooled → 16×16 maps
    pooled = md.tensor(rng.normal(size=(3, 4, 4, 4)).astype(np.float32))
    index = rng.integers(0, 256, (3, 2))
    valid = np.ones((3, 2), bool)
    opt = optim.Adam(head.parameters(), lr=0.02)
    first = None
    for _ in range(60):
        loss = keypoint_loss(head(pooled), index, valid)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits = head(pooled).numpy().reshape(3, 2, 256)
    assert loss.item() < 0.2 * first
    assert (logits.argmax(axis=2) == index).mean() >= 5 / 6


def test_expand_boxes_about_their_centres():
    np.testing.assert_allclose(expand_boxes([[10, 10, 30, 20]], 1.5), [[5, 7.5, 35, 22.5]])


# ---------------------------------------------------------------------------------------------
# Mask R-CNN with a keypoint head
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_and_batch():
    md.manual_seed(0)
    ds = ShapesKeypoints(2, image_size=64, seed=0)
    images = np.stack([ds[i][0] for i in range(2)])
    return MaskRCNN(num_keypoints=4), images, [ds[i][1] for i in range(2)]


def test_training_adds_a_keypoint_loss_that_reaches_the_head(model_and_batch):
    model, images, targets = model_and_batch
    losses = model(images, targets, rng=np.random.default_rng(0))
    assert np.isfinite(losses["loss_keypoint"].item()) and losses["loss_keypoint"].item() > 1
    sum(losses.values()).backward()
    grads = [p.grad for p in model.keypoint_head.parameters()]
    assert all(g is not None for g in grads) and any(np.abs(g.numpy()).sum() > 0 for g in grads)
    with pytest.raises(ValueError, match=r"targets\[0\]\['keypoints'\]"):
        bad = [dict(t, keypoints=t["keypoints"][:, :3]) for t in targets]
        model(images, bad, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="no 'keypoints'"):
        model(images, [{k: v for k, v in t.items() if k != "keypoints"} for t in targets])


def test_predictions_hold_keypoints_in_their_expanded_boxes(model_and_batch):
    model, images, _ = model_and_batch
    model.cfg.score_thresh = 0.0  # an untrained model's scores are low: keep some detections
    try:
        preds = model.predict(images)
    finally:
        model.cfg.score_thresh = 0.05
    for p in preds:
        kp, boxes = p["keypoints"], expand_boxes(p["boxes"], model.cfg.keypoint_box_scale)
        assert kp.shape == (len(p["boxes"]), 4, 3) and len(kp)
        assert (kp[:, :, 0] >= boxes[:, None, 0]).all() and (kp[:, :, 0] <= boxes[:, None, 2]).all()
        assert ((kp[:, :, 2] > 0) & (kp[:, :, 2] <= 1)).all()


def test_without_keypoints_the_model_is_unchanged():
    plain, with_kp = MaskRCNN(), MaskRCNN(num_keypoints=4)
    extra = set(with_kp.state_dict()) - set(plain.state_dict())
    assert (
        plain.keypoint_head is None and extra and all(k.startswith("keypoint_head.") for k in extra)
    )
    with pytest.raises(ValueError, match="num_keypoints"):
        MaskRCNN(num_keypoints=-1)
    with pytest.raises(ValueError, match="keypoint_box_scale"):
        MaskRCNN(num_keypoints=4, keypoint_box_scale=0.5)


def test_cli_passes_keypoints_and_dataset_and_prints_keypoint_ap(monkeypatch, capsys, tmp_path):
    import minidense.experiments.maskrcnn as mr
    from minidense.__main__ import main
    from minidense.metrics import KEYPOINT_STAT_NAMES

    seen = {}

    def train(*args, **kwargs):
        seen.update(kwargs)
        stats = {"AP": 0.5, "AP50": 0.75}
        return {"bbox": stats, "segm": stats, "keypoints": dict.fromkeys(KEYPOINT_STAT_NAMES, 0.25),
                "seconds": 1.0, "history": []}  # fmt: skip

    monkeypatch.setattr(mr, "train_maskrcnn", train)
    out = str(tmp_path / "run")
    assert main(["train-maskrcnn", "--keypoints", "--dataset", "panoptic", "--out", out]) == 0
    assert seen["keypoints"] is True and seen["dataset"] == "panoptic"
    printed = capsys.readouterr().out
    assert "keypoints" in printed and "25.0" in printed and "ARm" in printed
    assert main(["train-maskrcnn", "--out", out]) == 0 and seen["keypoints"] is False
