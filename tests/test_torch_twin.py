"""The torch twin that bench_maskrcnn times beside our Mask R-CNN (benchmarks/_torch_maskrcnn.py)
is the same model: with our weights copied in, the same features, head outputs, RoIAlign,
proposals, losses and gradients. Without torch and torchvision (CI installs neither) the module
is skipped, saying why; the benchmark then times minidense alone.

Sampling is random in both (NumPy's generator in ours, torch.randperm in the twin), so the losses
are compared on a configuration whose samplers take every candidate (batch sizes larger than the
candidates, positive fraction 1): what they pick is then the same set, and the losses must agree
to float32 rounding. That the twin's samplers draw the same *counts* as ours under the default
configuration is checked apart, where only which candidates are drawn is random.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import minidense as md
from minidense import functional as F
from minidense.data import ShapesInstances, default_collate
from minidense.models.maskrcnn import MaskRCNN, MaskRCNNConfig
from minidense.models.maskrcnn.matching import sample_balanced

torch = pytest.importorskip("torch", reason="torch is not installed (the twin is benchmark-only)")
pytest.importorskip("torchvision", reason="torchvision is not installed (the twin needs its ops)")
from torchvision import ops  # noqa: E402

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
try:
    import _torch_maskrcnn as tm  # noqa: E402
finally:
    sys.path.remove(str(BENCH))

# Every sampler takes every candidate: the sampled sets, hence the losses, are not random.
TAKE_ALL = dict(rpn_batch_per_image=10**6, rpn_positive_fraction=1.0, box_batch_per_image=10**6,
                box_positive_fraction=1.0, mask_batch_per_image=10**6)  # fmt: skip


def _close(ours, theirs, rtol=1e-4, atol=1e-5, what=""):
    ours = ours.numpy() if isinstance(ours, md.Tensor) else np.asarray(ours)
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


@pytest.fixture(scope="module")
def batch():
    """Two 96-px images (a 6×6 stride-16 map): ours as NumPy, the twin's as tensors."""
    data = ShapesInstances(2, image_size=96, seed=3)
    images, targets = default_collate([data[0], data[1]])
    return images, targets, *tm.batch(images, targets)


def _pair(cfg, roi_align="matmul"):
    md.manual_seed(0)
    model = MaskRCNN(cfg)
    return model, tm.copy_weights(model, tm.MaskRCNNTwin(cfg, roi_align))


def test_copy_weights_refuses_another_architecture_and_the_twin_unbuilt_knobs():
    model = MaskRCNN(MaskRCNNConfig(widths=(16, 32, 64, 128, 128)))  # stage 4: 128, not 96
    with pytest.raises(ValueError, match=r"backbone\.stages\.3\.0\.weight"):
        tm.copy_weights(model, tm.MaskRCNNTwin(MaskRCNNConfig()))
    model = MaskRCNN(MaskRCNNConfig(mask_convs=3))  # one conv fewer: names only on one side
    with pytest.raises(ValueError, match=r"only in the twin: \['roi_heads\.mask_head\.convs\.6"):
        tm.copy_weights(model, tm.MaskRCNNTwin(MaskRCNNConfig()))
    for knob in (dict(pooler="roipool"), dict(c4_head=True), dict(mask_loss="softmax"),
                 dict(num_keypoints=3), dict(sampling_ratio=0)):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(knob))):
            tm.MaskRCNNTwin(MaskRCNNConfig(**knob))
    with pytest.raises(ValueError, match="roi_align"):
        tm.MaskRCNNTwin(MaskRCNNConfig(), roi_align="roipool")


def test_backbone_rpn_head_and_batch_norm_statistics_are_ours(batch):
    images, targets, ti, _ = batch
    model, twin = _pair(MaskRCNNConfig())
    features, sizes, _ = model._features(images)
    tf, tsizes = twin.features(ti)
    assert [tuple(s) for s in sizes] == tsizes
    _close(features, tf, what="backbone features")
    for name, buf in model.named_buffers():  # the training forward updated the same statistics
        _close(buf, twin.get_buffer(name), what=name)
    # The RPN head on the very same features (ours), so that only the head is compared.
    obj, deltas = model.rpn.head(features)
    tobj, tdeltas = twin.rpn.head(torch.from_numpy(features.numpy()))
    _close(obj, tobj, what="objectness")
    _close(deltas, tdeltas, what="deltas")
    np.testing.assert_array_equal(model.rpn.anchors((6, 6)), twin.rpn.anchors(6, 6).numpy())


@pytest.mark.parametrize("roi_align", tm.ROI_ALIGNS)
def test_box_and_mask_heads_on_the_same_rois(batch, roi_align):
    images, *_ = batch
    model, twin = _pair(MaskRCNNConfig(), roi_align)
    features, *_ = model._features(images)
    tf = torch.from_numpy(features.numpy())
    rng = np.random.default_rng(0)
    boxes = []
    for k in (5, 3):  # some partly outside the 96-px images
        x1y1 = rng.uniform(-8, 90, (k, 2))
        boxes.append(np.hstack([x1y1, x1y1 + rng.uniform(2, 40, (k, 2))]).astype(np.float32))
    tboxes = [torch.from_numpy(b) for b in boxes]
    for head, size, name in ((model.roi_heads.box_head, 7, "box_head"),
                             (model.roi_heads.mask_head, 14, "mask_head")):  # fmt: skip
        ours = head(md.functional.roi_align(features, boxes, size, 1 / 16, 2, aligned=True))
        theirs = getattr(twin.roi_heads, name)(twin.roi_heads.pool(tf, tboxes, size))
        for a, b in zip(ours if isinstance(ours, tuple) else [ours],
                        theirs if isinstance(theirs, tuple) else [theirs], strict=True):  # fmt: skip
            _close(a, b, what=f"{name} with {roi_align}")


def _rois(rng, n_images, H, W, scale):
    """RoIs on a ``(H, W)`` map, in image pixels (cells / ``scale``): the whole map, on the
    borders, partly and wholly outside, tiny, a single point, and random ones."""
    cells = [[0, 0, 0, W, H], [1, 0, 0, W, H], [0, -3, -2, 2, 3], [1, W - 1, H - 2, W + 2, H + 1],
             [0, 2.3, 1.1, 2.4, 1.15], [1, 3, 3, 3, 3], [0, W + 2, 1, W + 5, 2],
             [1, 1.5, 0.5, W - 0.5, H - 1]]  # fmt: skip
    x1, y1 = rng.uniform(-2, [W, H], (12, 2)).T
    x2, y2 = x1 + rng.uniform(0, W / 2, 12), y1 + rng.uniform(0, H / 2, 12)
    cells += np.stack([rng.integers(0, n_images, 12), x1, y1, x2, y2], 1).tolist()
    rois = np.asarray(cells, np.float32)
    rois[:, 1:] /= scale
    return rois


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio, scale", [(2, 1 / 16), (1, 1.0), (3, 0.5)])
def test_matmul_roi_align_is_torchvisions_and_ours(aligned, sampling_ratio, scale):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    rois = _rois(rng, 2, 7, 9, scale)
    xt = torch.from_numpy(x).requires_grad_()
    mine = tm.matmul_roi_align(xt, torch.from_numpy(rois), 5, scale, sampling_ratio, aligned)
    args = (5, scale, sampling_ratio, aligned)
    stock = ops.roi_align(torch.from_numpy(x), torch.from_numpy(rois), *args)
    ours = F.roi_align(md.tensor(x), rois, *args)
    _close(stock, mine, rtol=1e-5, atol=1e-6, what="torchvision vs matmul")
    _close(ours, mine, rtol=1e-5, atol=1e-6, what="minidense vs matmul")
    assert (stock[4:8].abs().sum() > 0) and (stock[6] == 0).all()  # tiny boxes pool; outside: 0
    # The backward: the same gradient as torchvision's scatter.
    g = torch.from_numpy(rng.standard_normal(stock.shape).astype(np.float32))
    (mine * g).sum().backward()
    xs = torch.from_numpy(x).requires_grad_()
    (ops.roi_align(xs, torch.from_numpy(rois), *args) * g).sum().backward()
    _close(xs.grad, xt.grad, rtol=1e-5, atol=1e-5, what="gradient")
    # One (K_i, 4) tensor per image, as the heads pass them: the same RoIs, the same values.
    per_image = [torch.from_numpy(rois[rois[:, 0] == i, 1:]) for i in range(2)]
    order = np.argsort(rois[:, 0], kind="stable")
    _close(mine.detach()[order], tm.matmul_roi_align(xt, per_image, *args), rtol=0, atol=0)
    assert tm.matmul_roi_align(xt, torch.zeros(0, 5), *args).shape == (0, 3, 5, 5)
    with pytest.raises(ValueError, match="sampling_ratio"):
        tm.matmul_roi_align(xt, torch.from_numpy(rois), 5, scale, 0, aligned)


def test_proposals_losses_and_gradients_are_ours(batch):
    images, targets, ti, tt = batch
    cfg = MaskRCNNConfig(**TAKE_ALL)
    model, twin = _pair(cfg)
    # Ours, as MaskRCNN.forward runs it, and the twin's forward cut at the same places.
    features, sizes, _ = model._features(images)
    proposals, losses = model.rpn(features, sizes, targets, np.random.default_rng(0))
    tf, tsizes = twin.features(ti)
    tprops, tlosses = twin.rpn(tf, tsizes, tt)
    for p, tp in zip(proposals, tprops, strict=True):
        assert len(p) == len(tp) > 20
        _close(p, tp, rtol=1e-5, atol=1e-3, what="proposals")
    # Both heads on our proposals: the twin's are ours up to rounding, which must not decide.
    losses.update(model.roi_heads.losses(features, proposals, targets, np.random.default_rng(0)))
    tlosses.update(twin.roi_heads.losses(tf, [torch.from_numpy(p) for p in proposals], tt))
    assert sorted(losses) == sorted(tlosses)
    for name, loss in losses.items():
        assert loss.item() > 0, name  # every loss has something to say on this batch
        _close(loss, tlosses[name], what=name)
    sum(losses.values()).backward()
    sum(tlosses.values()).backward()
    for name, p in model.named_parameters():
        g = twin.get_parameter(name).grad
        _close(p.grad, g, rtol=2e-3, atol=1e-5 * float(g.abs().max()), what=f"gradient of {name}")
    # The whole forward marks the bench's stages and returns the same losses.
    marks = []
    assert sorted(twin(ti, tt, marks.append)) == sorted(losses)
    assert marks == ["backbone", "rpn", "roi heads"]


def test_the_samplers_draw_as_many_as_ours_under_the_default_configuration():
    cfg = MaskRCNNConfig()
    rng = np.random.default_rng(0)
    for batch_size, fraction, twin_sampler in (
        (cfg.rpn_batch_per_image, cfg.rpn_positive_fraction, tm.RPN(cfg, 8).sampler),
        (cfg.box_batch_per_image, cfg.box_positive_fraction, tm.RoIHeads(cfg, 8, "matmul").sampler),
    ):  # fmt: skip
        for n_pos, n_neg in ((3, 500), (200, 500), (0, 10), (40, 5)):
            labels = rng.permutation(np.r_[np.ones(n_pos), np.zeros(n_neg), -np.ones(30)])
            pos, neg = sample_balanced(labels, batch_size, fraction, rng)
            (tpos,), (tneg,) = twin_sampler([torch.from_numpy(labels)])
            assert (int(tpos.sum()), int(tneg.sum())) == (len(pos), len(neg))
            assert (labels[tpos.numpy() == 1] == 1).all() and (labels[tneg.numpy() == 1] == 0).all()
