"""Mask R-CNN components: anchors, matching, sampling, proposals, mask targets and pasting, the
mask losses, gradchecks through each pooler, and the whole model's training and inference."""

import math

import numpy as np
import pytest

import minidense as md
from minidense.data.shapes import ShapesInstances
from minidense.models import receptive_field_of
from minidense.models.blocks import ResidualBlock
from minidense.models.maskrcnn import MaskRCNN, MaskRCNNConfig
from minidense.models.maskrcnn.anchors import base_anchors, grid_anchors
from minidense.models.maskrcnn.backbone import Backbone
from minidense.models.maskrcnn.matching import BELOW_LOW, BETWEEN, match, sample_balanced
from minidense.models.maskrcnn.paste import paste_masks
from minidense.models.maskrcnn.roi_heads import (
    C4BoxHead,
    C4MaskHead,
    MaskHead,
    Res5Head,
    RoIHeads,
    mask_targets,
    pool_features,
)
from minidense.models.maskrcnn.rpn import RPN

SMALL = dict(
    widths=(8, 16, 16, 16, 16), rpn_channels=16, box_fc=32, mask_channels=8, mask_convs=1,
    mask_pool=7, mask_size=14, rpn_batch_per_image=64, box_batch_per_image=32,
    rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30,
    rpn_pre_nms_top_n_test=60, rpn_post_nms_top_n_test=20, detections_per_image=10,
)  # fmt: skip


# ------------------------------------------------------------------------------- anchors


def test_base_anchors_sizes_and_ratios():
    a = base_anchors((16,), (0.5, 1.0, 2.0))
    # ratio = h/w: w = 16/√r, h = 16·√r, centred on 0, rounded to whole pixels.
    np.testing.assert_array_equal(
        a, [[-11, -6, 11, 6], [-8, -8, 8, 8], [-6, -11, 6, 11]]
    )  # fmt: skip
    a = base_anchors((8, 32), (1.0, 4.0))
    np.testing.assert_array_equal(
        a, [[-4, -4, 4, 4], [-16, -16, 16, 16], [-2, -8, 2, 8], [-8, -32, 8, 32]]
    )  # fmt: skip
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(np.sqrt(w * h), [8, 32, 8, 32])  # area kept across ratios
    np.testing.assert_allclose(h / w, [1, 1, 4, 4])


def test_grid_anchors_count_order_and_centres():
    sizes, ratios, stride = (16, 32), (0.5, 1.0, 2.0), 8
    H, W, A = 3, 4, 6
    g = grid_anchors((H, W), stride, sizes, ratios)
    assert g.shape == (H * W * A, 4) and g.dtype == np.float32
    cell = base_anchors(sizes, ratios)
    per_cell = g.reshape(H, W, A, 4)
    for y in range(H):
        for x in range(W):
            # Cell (y, x): the base anchors moved to (x·stride, y·stride), row-major.
            np.testing.assert_array_equal(
                per_cell[y, x], cell + [x * stride, y * stride, x * stride, y * stride]
            )
    centres = (g[:, :2] + g[:, 2:]) / 2
    assert np.all(centres % stride == 0)
    assert set(map(tuple, centres[::A])) == {
        (x * stride, y * stride) for y in range(H) for x in range(W)
    }


def test_rpn_head_outputs_flatten_in_anchor_order():
    from minidense.models.maskrcnn.rpn import flatten_head_outputs

    N, A, H, W = 2, 3, 2, 4
    n, a, y, x = np.meshgrid(*map(np.arange, (N, A, H, W)), indexing="ij")
    code = n * 1000 + a * 100 + y * 10 + x  # every value says where it came from
    deltas = np.stack([code * 10 + j for j in range(4)], axis=2).reshape(N, 4 * A, H, W)
    obj, d = flatten_head_outputs(md.tensor(code.astype(float)), md.tensor(deltas.astype(float)))
    assert obj.shape == (N, H * W * A) and d.shape == (N, H * W * A, 4)
    for i, (yy, xx, aa) in enumerate(np.ndindex(H, W, A)):  # cell-major, A per cell
        assert obj.numpy()[1, i] == 1000 + aa * 100 + yy * 10 + xx
        np.testing.assert_array_equal(
            d.numpy()[1, i], (1000 + aa * 100 + yy * 10 + xx) * 10 + np.arange(4)
        )


# ------------------------------------------------------------------------------- matching


def test_match_thresholds():
    iou = np.array([[0.9, 0.5, 0.1, 0.2, 0.7], [0.3, 0.6, 0.05, 0.3, 0.1]])
    m = match(iou, high=0.7, low=0.3)
    # ≥ high matched (0.7 included); [low, high) ignored (0.3 included); < low background.
    np.testing.assert_array_equal(m, [0, BETWEEN, BELOW_LOW, BETWEEN, 0])


def test_match_low_quality_with_ties():
    iou = np.array([
        [0.9, 0.1, 0.2, 0.0, 0.0],
        [0.2, 0.4, 0.1, 0.4, 0.0],  # best 0.4, reached twice: both columns matched
        [0.1, 0.45, 0.05, 0.0, 0.0],  # best 0.45 at column 1, which gt 1 also wants
    ])  # fmt: skip
    m = match(iou, 0.7, 0.3)
    np.testing.assert_array_equal(m, [0, BETWEEN, BELOW_LOW, BETWEEN, BELOW_LOW])
    m = match(iou, 0.7, 0.3, allow_low_quality=True)
    # Column 1 goes to its own best ground truth (2), as torchvision's matcher does; column 3
    # is gt 1's tie; the zero-IoU column 4 stays background.
    np.testing.assert_array_equal(m, [0, 2, BELOW_LOW, 1, BELOW_LOW])
    # A ground truth that touches nothing gets no match.
    iou = np.array([[0.0, 0.0], [0.8, 0.1]])
    np.testing.assert_array_equal(match(iou, 0.7, 0.3, True), [1, BELOW_LOW])


def test_match_without_ground_truth_or_candidates():
    np.testing.assert_array_equal(match(np.zeros((0, 3)), 0.7, 0.3, True), [BELOW_LOW] * 3)
    assert match(np.zeros((2, 0)), 0.7, 0.3, True).shape == (0,)


def test_sample_balanced():
    labels = np.array([1] * 10 + [0] * 30 + [-1] * 20 + [2] * 5)
    pos, neg = sample_balanced(labels, 16, 0.25, np.random.default_rng(0))
    assert len(pos) == 4 and len(neg) == 12  # at most a quarter positive, the rest negative
    assert (labels[pos] >= 1).all() and (labels[neg] == 0).all()
    assert len(set(pos)) == 4 and len(set(neg)) == 12
    # Few positives: the batch fills up with negatives.
    few = np.array([1, 0, 0, 0, 0, 0, 0, 0, -1, -1])
    pos, neg = sample_balanced(few, 6, 0.5, np.random.default_rng(1))
    assert list(pos) == [0] and len(neg) == 5 and not set(neg) & {8, 9}
    # Not enough of anything: everything usable, never an ignored one.
    pos, neg = sample_balanced(few, 100, 0.5, np.random.default_rng(1))
    assert list(pos) == [0] and list(neg) == list(range(1, 8))
    # Deterministic for a seeded generator, different for another seed.
    a = sample_balanced(labels, 16, 0.25, np.random.default_rng(7))
    b = sample_balanced(labels, 16, 0.25, np.random.default_rng(7))
    c = sample_balanced(labels, 16, 0.25, np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


# ------------------------------------------------------------------------------- proposals


def test_rpn_propose_topk_clip_nms():
    cfg = MaskRCNNConfig(
        rpn_pre_nms_top_n_train=4, rpn_post_nms_top_n_train=2, rpn_nms=0.5, rpn_min_size=1.0
    )
    rpn = RPN(cfg, 4)
    anchors = np.array(
        [
            [0, 0, 10, 10],  # score 0.9: kept first
            [1, 0, 11, 10],  # 0.8: IoU 0.82 with the first → suppressed
            [-5, 20, 10, 40],  # 0.7: clipped to (0, 20, 10, 32), kept second
            [20, 20, 30, 30],  # 0.6: kept third, but post-NMS top-2 drops it
            [15, 0, 25, 10],  # 0.1: outside the pre-NMS top 4
        ],
        np.float32,
    )  # fmt: skip
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.1]], np.float32)
    deltas = np.zeros((1, 5, 4), np.float32)
    (props,) = rpn._propose(scores, deltas, anchors, [(32, 32)])
    np.testing.assert_array_equal(props, [[0, 0, 10, 10], [0, 20, 10, 32]])
    # Deltas move the boxes (dx = 0.1 shifts by a tenth of the width); a box clipped to zero area
    # is dropped; at test time the larger top-k lets the lowest-scoring box in.
    deltas[0, 0] = [0.1, 0, 0, 0]
    anchors[2] = [40, 40, 50, 50]
    rpn.eval()
    (props,) = rpn._propose(scores, deltas, anchors, [(32, 32)])
    # Box 0 moved exactly onto box 1, which NMS then suppresses.
    np.testing.assert_allclose(
        props, [[1, 0, 11, 10], [20, 20, 30, 30], [15, 0, 25, 10]], atol=1e-5
    )  # fmt: skip


# ------------------------------------------------------------------------------- masks


def rect_mask(h, w, box):
    x1, y1, x2, y2 = box
    m = np.zeros((1, h, w), np.uint8)
    m[0, y1:y2, x1:x2] = 1  # exclusive x2/y2, as the dataset's boxes
    return m


@pytest.mark.parametrize("size", [8, 28])
def test_mask_targets_crop(size):
    box = (6, 4, 16, 12)
    gt = rect_mask(20, 20, box)
    full = mask_targets(gt, np.array([0]), np.array([box], np.float32), size)[0]
    assert full.shape == (size, size)
    assert set(np.unique(full)) == ({1.0} if size == 8 else {0.0, 1.0})
    # With bins finer than a pixel, bilinear smoothing of the mask's corner falls below 0.5 in
    # the four corner cells only; every edge row and column (the half-pixel test) is ones.
    zeros = {tuple(ij) for ij in np.argwhere(full == 0)}
    assert zeros <= {(0, 0), (0, size - 1), (size - 1, 0), (size - 1, size - 1)}
    assert full[-1, 1:-1].all() and full[1:-1, -1].all() and full[0, 1:-1].all()
    # Proposal moved right by half its width: the left half lies on the mask.
    shifted = mask_targets(gt, np.array([0]), np.array([[11, 4, 21, 12]], np.float32), size)[0]
    h = size // 2
    assert (shifted[:, h:] == 0).all()
    assert shifted[1:-1, :h].all() and shifted[:, 1 : h - 1].all()
    # Each proposal reads the ground truth it is matched with.
    two = np.concatenate([gt, rect_mask(20, 20, (0, 0, 3, 3))])
    out = mask_targets(two, np.array([1, 0]), np.array([box, box], np.float32), size)
    assert out[0].sum() == 0 and (out[1] == full).all()
    assert mask_targets(gt, np.zeros(0, int), np.zeros((0, 4), np.float32), size).shape == (
        0, size, size,
    )  # fmt: skip


def test_paste_masks_covers_the_box():
    ones = np.ones((2, 28, 28), np.float32)
    boxes = np.array([[10, 10, 30, 30], [-10, 50, 20, 80]], np.float32)
    out = paste_masks(ones, boxes, (64, 64))
    assert out.shape == (2, 64, 64) and out.dtype == bool
    expected = np.zeros((64, 64), bool)
    expected[10:30, 10:30] = True
    np.testing.assert_array_equal(out[0], expected)
    # Partly outside: clipped to the image; nothing outside the box (grown by one pixel).
    inside = np.zeros((64, 64), bool)
    inside[49:, :21] = True
    assert not (out[1] & ~inside).any()
    assert out[1][50:, :20].mean() > 0.95
    # A soft mask that is 1 on its left half fills the box's left half.
    half = np.zeros((1, 28, 28), np.float32)
    half[:, :, :14] = 1
    out = paste_masks(half, boxes[:1], (64, 64))[0]
    assert out[12:28, 10:19].all() and not out[:, 21:].any()
    assert paste_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), (8, 9)).shape == (0, 8, 9)


# ------------------------------------------------------------------------------- mask loss


def heads(**kw):
    return RoIHeads(MaskRCNNConfig(num_classes=3, **kw), 4)


def bce(x, t):
    return np.mean(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))


def test_sigmoid_mask_loss_uses_only_the_true_class():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 4))
    labels = np.array([2, 1])
    target = (rng.uniform(size=(2, 4, 4)) > 0.5).astype(np.float32)
    h = heads(mask_loss="sigmoid")
    loss = h.mask_loss(md.tensor(logits), labels, target).item()
    expected = bce(logits[[0, 1], [2, 1]], target)
    assert loss == pytest.approx(expected, rel=1e-12)
    other = logits.copy()
    other[0, [0, 1]] += 5.0
    other[1, [0, 2]] -= 3.0
    assert h.mask_loss(md.tensor(other), labels, target).item() == loss
    other[0, 2] += 0.1
    assert h.mask_loss(md.tensor(other), labels, target).item() != loss


def test_softmax_mask_loss_depends_on_all_classes():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4, 4))
    labels = np.array([2, 1])
    target = (rng.uniform(size=(2, 4, 4)) > 0.5).astype(np.float32)
    h = heads(mask_loss="softmax")
    loss = h.mask_loss(md.tensor(logits), labels, target).item()
    # Per-pixel softmax over classes; mask pixels belong to the true class, the rest to 0.
    cls = (target > 0.5) * labels[:, None, None]
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.take_along_axis(logp, cls[:, None], axis=1).mean()
    assert loss == pytest.approx(expected, rel=1e-12)
    other = logits.copy()
    other[0, 1] += 1.0  # a class that is neither the target nor background
    assert h.mask_loss(md.tensor(other), labels, target).item() != pytest.approx(loss)


@pytest.mark.parametrize("mask_loss", ["sigmoid", "softmax"])
def test_predicted_soft_masks_threshold_where_the_class_wins(mask_loss):
    """sigmoid: the class's own probability; softmax: ≥ 0.5 exactly where the class wins the
    per-pixel softmax (row 2: p_k = 0.44 wins, which a plain p_k ≥ 0.5 would reject)."""
    h = heads(mask_loss=mask_loss, mask_pool=2, mask_size=4)
    logits = np.zeros((1, 3, 4, 4), np.float32)
    logits[0, 2, :2] = np.log(4.0)  # top rows: softmax p = (1/6, 1/6, 2/3)
    logits[0, 2, 2:] = np.log(1.6)  # bottom rows: softmax p = (0.28, 0.28, 0.44): class 2 wins
    logits[0, 0, 3:] = np.log(4.0)  # last row: background wins (softmax p_0 = 4/6.6)
    h.mask_head.forward = lambda pooled: md.tensor(logits)
    results = [{"boxes": np.array([[0, 0, 4, 4]], np.float32), "labels": np.array([2])}]
    h._predict_masks(md.zeros(1, 4, 8, 8), results)
    probs = results[0]["mask_probs"][0]
    if mask_loss == "sigmoid":
        np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits[0, 2])), rtol=1e-6)
    else:
        p = np.exp(logits[0]) / np.exp(logits[0]).sum(axis=0)
        np.testing.assert_allclose(probs, 0.5 + 0.5 * (p[2] - np.maximum(p[0], p[1])), rtol=1e-6)
        assert (probs[:3] >= 0.5).all() and (probs[3] < 0.5).all()
        assert p[2, 2, 0] < 0.5 < probs[2, 0]


def _head_inputs(seed):
    """float64 features (1, 2, 4, 4), two RoIs at stride 16, their labels and (2, 8, 8) mask
    targets. Distinct feature values: RoIPool's max has no ties, so its gradient is well defined."""
    rng = np.random.default_rng(seed)
    feats = md.tensor((rng.permutation(32) + rng.uniform(0.1, 0.9, 32)).reshape(1, 2, 4, 4) / 32,
                      requires_grad=True)  # fmt: skip
    boxes = [np.array([[3.3, 5.1, 40.7, 50.2], [20.5, 10.2, 60.1, 33.3]])]  # stride 16 → 4×4
    labels = np.array([1, 2])
    target = (rng.uniform(size=(2, 8, 8)) > 0.5).astype(np.float64)
    return feats, boxes, labels, target


@pytest.mark.parametrize("pooler", ["roipool", "roiwarp", "roialign"])
@pytest.mark.parametrize("mask_loss", ["sigmoid", "softmax"])
def test_gradcheck_pool_maskhead_loss(pooler, mask_loss):
    cfg = MaskRCNNConfig(num_classes=3, pooler=pooler, mask_loss=mask_loss, mask_pool=4,
                         mask_size=8, mask_channels=2, mask_convs=1)  # fmt: skip
    md.manual_seed(0)
    head = MaskHead(2, cfg.mask_channels, cfg.mask_convs, cfg.num_classes).double()
    roi_heads = RoIHeads(cfg, 2)
    feats, rois, labels, target = _head_inputs(seed=2)

    def loss(f):
        logits = head(pool_features(f, rois, cfg.mask_pool, cfg))
        assert logits.shape == (2, 3, 8, 8)
        return roi_heads.mask_loss(logits, labels, target)

    assert md.gradcheck(loss, [feats])
    loss(feats).backward()
    assert np.abs(feats.grad.numpy()).sum() > 0


# ------------------------------------------------------------------------------- whole model


@pytest.fixture(scope="module")
def batch():
    ds = ShapesInstances(3, image_size=64, seed=1, max_shapes=2, size_range=(0.2, 0.4))
    items = [ds[i] for i in range(len(ds))]
    return np.stack([im for im, _ in items]), [t for _, t in items]


# The C4 head halves an even mask_pool with its stride-2 stage, then upsamples 4×.
C4 = dict(c4_head=True, mask_pool=8, mask_size=16)


@pytest.mark.parametrize("extra", [{}, C4], ids=["conv-heads", "c4-head"])
def test_training_step_losses_and_a_short_run_learns(batch, extra):
    images, targets = batch
    md.manual_seed(0)
    model = MaskRCNN(**dict(SMALL, **extra))
    opt = md.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    totals = []
    for _ in range(15):
        losses = model(images, targets, rng=rng)
        assert set(losses) == {
            "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"
        }  # fmt: skip
        assert all(v.size == 1 and math.isfinite(v.item()) for v in losses.values())
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3]), totals
    # The trained model predicts; it says so per image, with consistent shapes.
    results = model.predict(images)
    assert model.training  # predict restores the mode
    assert len(results) == len(images)
    C = model.cfg.num_classes
    for r in results:
        D = len(r["boxes"])
        assert 0 < D <= model.cfg.detections_per_image
        assert r["boxes"].shape == (D, 4) and r["boxes"].dtype == np.float32
        assert r["labels"].shape == (D,) and ((r["labels"] >= 1) & (r["labels"] < C)).all()
        assert r["scores"].shape == (D,) and (np.diff(r["scores"]) <= 0).all()
        assert r["masks"].shape == (D, 64, 64) and r["masks"].dtype == bool
        b = r["boxes"]
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= 64).all() and (b[:, 3] <= 64).all()
        assert (b[:, 2:] >= b[:, :2]).all()


@pytest.mark.parametrize("cap", [1, 3, 1000])
def test_mask_head_trains_on_at_most_mask_batch_per_image_foreground_rois(batch, cap):
    images, targets = batch
    md.manual_seed(0)
    model = MaskRCNN(**dict(SMALL, mask_batch_per_image=cap))
    seen = []
    real = model.roi_heads.mask_head.forward
    model.roi_heads.mask_head.forward = lambda pooled: seen.append(len(pooled)) or real(pooled)
    rng = np.random.default_rng(0)
    proposals = [t["boxes"] for t in targets]  # the ground truth boxes: all foreground
    features, _, _ = model._features(images)  # (features, image sizes, the finer map)
    model.roi_heads.losses(features, proposals, targets, rng)
    # Each image offers 2 × its objects as foreground (proposal copies + the ground truth).
    offered = sum(2 * len(t["boxes"]) for t in targets)
    expected = sum(min(cap, 2 * len(t["boxes"])) for t in targets)
    assert seen == [expected] and expected <= offered


def test_image_without_objects_trains():
    md.manual_seed(1)
    model = MaskRCNN(**SMALL)
    images = np.random.default_rng(0).uniform(size=(2, 3, 64, 64)).astype(np.float32)
    empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
             "masks": np.zeros((0, 64, 64), np.uint8)}  # fmt: skip
    losses = model(images, [empty, empty], rng=np.random.default_rng(0))
    assert losses["loss_mask"].item() == 0 and losses["loss_rpn_box_reg"].item() == 0
    sum(losses.values()).backward()
    assert model.rpn.head.cls_logits.weight.grad is not None
    # No proposals either (all filtered as too small): no RoI at all, still finite losses.
    model = MaskRCNN(**dict(SMALL, rpn_min_size=1000.0))
    losses = model(images, [empty, empty], rng=np.random.default_rng(0))
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert losses["loss_classifier"].item() == 0
    sum(losses.values()).backward()
    # ...and inference then finds nothing, with well-formed empty results.
    (r,) = model.predict(images[:1])
    assert r["boxes"].shape == (0, 4) and r["masks"].shape == (0, 64, 64)
    assert r["labels"].shape == r["scores"].shape == (0,)


def test_eval_and_train_modes(batch):
    images, _ = batch
    md.manual_seed(2)
    model = MaskRCNN(**SMALL)
    with pytest.raises(ValueError, match="needs targets"):
        model(images)
    model.eval()
    results = model(images[:1])  # eval without targets = predict
    assert isinstance(results, list) and len(results) == 1
    assert set(results[0]) == {"boxes", "labels", "scores", "masks"}
    assert not model.training
    # predict on a Tensor works the same way, and a float64 array joins the model's float32.
    again = model.predict(md.tensor(images[:1]))
    np.testing.assert_array_equal(again[0]["boxes"], results[0]["boxes"])
    again = model.predict(images[:1].astype(np.float64))
    np.testing.assert_array_equal(again[0]["boxes"], results[0]["boxes"])


def bad_targets(batch, field, value):
    images, targets = batch
    t = [dict(x) for x in targets]
    t[0][field] = value(t[0])
    return images, t


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("labels", lambda t: np.full_like(t["labels"], 4), "labels'\\] must be in 1..3"),
        ("labels", lambda t: np.zeros_like(t["labels"]), "labels'\\] must be in 1..3"),
        ("labels", lambda t: t["labels"].astype(np.float32), "labels'\\] must be"),
        ("masks", lambda t: t["masks"][:, :32], "masks'\\] must have shape"),
        ("boxes", lambda t: t["boxes"][:, [2, 1, 0, 3]] + [[0, 0, -1, 0]], "boxes'\\].*x2 >= x1"),
        ("boxes", lambda t: np.where(np.eye(len(t["boxes"]), 4) > 0, np.nan, t["boxes"]),
         "boxes'\\] must be finite"),
        ("boxes", lambda t: t["boxes"][:, :3], "boxes'\\] must be finite \\(K, 4\\)"),
    ],
)  # fmt: skip
def test_targets_validation(batch, field, value, message):
    images, targets = bad_targets(batch, field, value)
    model = MaskRCNN(**SMALL)
    with pytest.raises(ValueError, match=r"targets\[0\]\['" + message):
        model(images, targets)


def test_targets_structure_errors(batch):
    images, targets = batch
    model = MaskRCNN(**SMALL)
    with pytest.raises(ValueError, match="one dict per image"):
        model(images, targets[:2])
    with pytest.raises(ValueError, match="has no 'masks' entry"):
        model(images, [{k: v for k, v in t.items() if k != "masks"} for t in targets])
    with pytest.raises(TypeError, match="float images"):
        model((images * 255).astype(np.uint8), targets)


def test_config_validation():
    with pytest.raises(ValueError, match="stride must be 16 or 32, got 8"):
        MaskRCNNConfig(stride=8)
    with pytest.raises(ValueError, match="pooler must be one of.*'foo'"):
        MaskRCNNConfig(pooler="foo")
    with pytest.raises(ValueError, match="mask_loss must be one of.*'bar'"):
        MaskRCNNConfig(mask_loss="bar")
    with pytest.raises(ValueError, match="num_classes"):
        MaskRCNNConfig(num_classes=1)
    with pytest.raises(ValueError, match="mask_size must be 2 \\* mask_pool = 14, got 28"):
        MaskRCNNConfig(mask_pool=7)
    with pytest.raises(ValueError, match="widths needs 5 entries"):
        MaskRCNNConfig(stride=32, widths=(8, 8, 8, 8))
    with pytest.raises(TypeError, match="not both"):
        MaskRCNN(MaskRCNNConfig(), stride=32)
    with pytest.raises(TypeError, match=r"config must be a MaskRCNNConfig .*got dict"):
        MaskRCNN({"stride": 16})  # once an AttributeError ('dict' has no 'in_channels')
    cfg = MaskRCNNConfig(stride=32, pooler="roipool")
    assert cfg.num_stages == 5 and cfg.to_dict()["anchor_ratios"] == [0.5, 1.0, 2.0]
    assert MaskRCNN(cfg).backbone.stride == 32


def test_paste_masks_covers_a_small_box_exactly():
    """An all-ones soft mask fills exactly the pixels of an integer box — no extra ring."""
    from minidense.models.maskrcnn.paste import paste_masks

    boxes = np.array([[10.0, 12.0, 20.0, 16.0], [3.0, 3.0, 5.0, 4.0]])
    masks = paste_masks(np.ones((2, 28, 28)), boxes, (32, 32))
    for m, (x1, y1, x2, y2) in zip(masks, boxes.astype(int), strict=True):
        expected = np.zeros((32, 32), bool)
        expected[y1:y2, x1:x2] = True
        np.testing.assert_array_equal(m, expected)


# ------------------------------------------------------------------------------- backbone


def test_c5_blocks_only_at_stride_32():
    blocks = lambda m: [b for b in m.backbone.modules() if isinstance(b, ResidualBlock)]  # noqa: E731
    assert len(blocks(MaskRCNN(MaskRCNNConfig(stride=32, c5_blocks=3, **SMALL)))) == 3
    assert blocks(MaskRCNN(MaskRCNNConfig(stride=16, c5_blocks=3, **SMALL))) == []
    plain = MaskRCNN(MaskRCNNConfig(stride=32, c5_blocks=0, **SMALL))
    assert blocks(plain) == [] and len(plain.backbone.stages[-1]) == 6  # down, bn, relu, conv ×3
    # Each 3×3 conv at stride 32 adds 2·32 pixels: the stride-32 stage's own two convs, then
    # two per block.
    rf = [receptive_field_of(Backbone(3, SMALL["widths"], 32, n).stages) for n in (0, 1, 2)]
    assert rf[1] - rf[0] == rf[2] - rf[1] == 2 * 2 * 32
    with pytest.raises(ValueError, match="c5_blocks must be an int >= 0, got -1"):
        MaskRCNNConfig(stride=32, c5_blocks=-1)
    for bad in (1.5, -1, True):
        with pytest.raises(ValueError, match=f"Backbone: c5_blocks must be an int >= 0, got {bad}"):
            Backbone(3, SMALL["widths"], 32, bad)


def test_residual_block_starts_as_identity_and_gradchecks():
    md.manual_seed(0)
    block = ResidualBlock(3).double()
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4))
    # The last batch norm's scale starts at 0, so the block starts as relu(x).
    np.testing.assert_array_equal(block(md.tensor(x)).numpy(), np.maximum(x, 0))
    block.bn2.weight.data[...] = np.array([0.5, -1.0, 2.0])  # then let the residual path count
    xt = md.tensor(x, requires_grad=True)
    assert md.gradcheck(lambda x: block(x), [xt])
    w = block.conv1[0].weight
    assert md.gradcheck(lambda x, w: (block(x) * block(x)).sum(), [xt, w], atol=1e-6)


def test_c4_head_only_at_stride_16():
    """Stride 16 runs the fifth stage per RoI (the paper's C4 model); at stride 32 the fifth
    stage is the backbone's and the conv heads stay (its C5 model)."""
    heads = MaskRCNN(MaskRCNNConfig(stride=16, **dict(SMALL, **C4))).roi_heads
    assert isinstance(heads.res5, Res5Head) and heads.res5.out_channels == SMALL["widths"][4]
    assert isinstance(heads.box_head, C4BoxHead) and isinstance(heads.mask_head, C4MaskHead)
    assert heads.box_pool == C4["mask_pool"]  # both branches pool 8×8 and share the stage
    heads = MaskRCNN(MaskRCNNConfig(stride=32, **dict(SMALL, **C4))).roi_heads
    assert heads.res5 is None and isinstance(heads.mask_head, MaskHead)
    assert heads.box_pool == MaskRCNNConfig().box_pool
    for bad, message in (
        (dict(c4_head=1), "c4_head must be True or False, got 1"),
        (dict(c4_head=True, mask_pool=7, mask_size=14), "c4_head needs an even mask_pool, got 7"),
        (dict(C4, widths=(8, 8, 8, 8)), "widths needs 5 entries for stride 16 with c4_head"),
    ):
        with pytest.raises(ValueError, match=message):
            MaskRCNNConfig(stride=16, **bad)
    MaskRCNNConfig(stride=32, c4_head=True, mask_pool=7, mask_size=14)  # not used: no check


@pytest.mark.parametrize("pooler", ["roipool", "roialign"])
def test_c4_head_shapes_and_gradcheck(pooler):
    """Pool → per-RoI fifth stage → box branch (average, linear) and mask branch (two 2×
    transposed convs), float64 central differences through the features and a stage weight."""
    cfg = MaskRCNNConfig(num_classes=3, pooler=pooler, c4_head=True, mask_pool=4, mask_size=8,
                         mask_channels=2, widths=(2, 2, 2, 2, 3))  # fmt: skip
    md.manual_seed(0)
    heads = RoIHeads(cfg, 2).double()
    feats, rois, labels, target = _head_inputs(seed=3)
    w = heads.res5.convs[0].weight

    def loss(f, weight):  # gradcheck perturbs the stage's weight in place
        x = heads._pool(f, rois, cfg.mask_pool)
        assert x.shape == (2, 3, 2, 2)  # the stage's stride 2 halves the 4×4 pool
        logits, deltas = heads.box_head(x)
        assert logits.shape == (2, 3) and deltas.shape == (2, 12)
        masks = heads.mask_head(x)
        assert masks.shape == (2, 3, 8, 8)
        return heads.mask_loss(masks, labels, target) + (logits * logits).sum() + deltas.sum()

    assert md.gradcheck(loss, [feats, w], atol=1e-6)
    feats.grad = None
    loss(feats, w).backward()
    assert np.abs(feats.grad.numpy()).sum() > 0


def test_targets_with_a_flat_box_are_refused_and_lists_accepted(batch):
    """A zero-width box has IoU 0/0 with itself and a log(0) regression target: refused (as
    torchvision does) instead of a NaN box loss. Targets given as lists train like arrays."""
    images, targets = batch
    md.manual_seed(0)
    model = MaskRCNN(**SMALL)
    flat = [dict(t) for t in targets]
    flat[1]["boxes"] = flat[1]["boxes"].copy()
    flat[1]["boxes"][0, 2] = flat[1]["boxes"][0, 0]
    with pytest.raises(ValueError, match=r"targets\[1\]\['boxes'\] row 0 has zero width or height"):
        model(images, flat)
    as_lists = [{k: v.tolist() for k, v in t.items()} for t in targets]
    md.manual_seed(0)
    a = model(images, as_lists, rng=np.random.default_rng(0))
    md.manual_seed(0)
    b = model(images, targets, rng=np.random.default_rng(0))
    for k in a:
        assert math.isfinite(a[k].item()) and a[k].item() == pytest.approx(b[k].item(), rel=1e-6), k
