"""Whole models train on "cuda": one SGD step of a tiny U-Net and of a tiny Mask R-CNN on the device
matches the same step on the CPU (losses, and every parameter and buffer afterwards).

Under the Numba CUDA simulator (the default, see conftest.py) the models are as small as they can
be; with MINIDENSE_TEST_GPU=1 the ``gpu``-marked tests train bigger ones on a real GPU.
"""

import os

import numpy as np
import pytest
from numba import cuda

import minidense as md
import minidense.functional as F
from minidense.backend import cuda as C
from minidense.models import UNet
from minidense.models.maskrcnn import MaskRCNN

ON_GPU = os.environ.get("MINIDENSE_TEST_GPU") == "1"
gpu = pytest.mark.skipif(
    not (ON_GPU and not C.SIMULATOR and cuda.is_available()),
    reason="needs a real CUDA GPU: run with MINIDENSE_TEST_GPU=1 on a machine with one",
)


def assert_states_close(got, expected, rtol, atol):
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=atol, err_msg=name)


# ------------------------------------------------------------------------------- U-Net


def unet_step(device, shape=(1, 1, 8, 8), depth=1, base=2, dtype=np.float64):
    """One SGD step of a freshly seeded U-Net on ``device``: (loss, logits, state after)."""
    md.manual_seed(0)
    model = UNet(in_channels=shape[1], num_classes=2, depth=depth, base=base)._cast(dtype)
    model.to(device)
    opt = md.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    x = md.tensor(rng.standard_normal(shape).astype(dtype)).to(device)
    y = md.tensor(rng.integers(0, 2, (shape[0],) + shape[2:])).to(device)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.device == device for p in model.parameters())
    return loss.item(), logits.numpy(), model.state_dict()


def test_unet_training_step_on_cuda_matches_cpu():
    loss_cpu, logits_cpu, state_cpu = unet_step("cpu")
    loss_cuda, logits_cuda, state_cuda = unet_step("cuda")
    assert np.isfinite(loss_cuda)
    np.testing.assert_allclose(loss_cuda, loss_cpu, rtol=1e-10)
    np.testing.assert_allclose(logits_cuda, logits_cpu, rtol=1e-9, atol=1e-11)
    assert_states_close(state_cuda, state_cpu, rtol=1e-9, atol=1e-11)
    # The step changed the weights (so matching them after it means something).
    md.manual_seed(0)
    fresh = UNet(in_channels=1, num_classes=2, depth=1, base=2).double().state_dict()
    assert any(not np.allclose(fresh[k], state_cuda[k]) for k in fresh)


# ------------------------------------------------------------------------------- Mask R-CNN

TINY_MASK_RCNN = dict(
    num_classes=2, widths=(2, 2, 2, 2), anchor_sizes=(8, 16), anchor_ratios=(1.0,),
    rpn_channels=4, rpn_batch_per_image=16, rpn_pre_nms_top_n_train=20,
    rpn_post_nms_top_n_train=8, rpn_pre_nms_top_n_test=20, rpn_post_nms_top_n_test=8,
    box_batch_per_image=8, box_pool=2, box_fc=8, mask_pool=2, mask_size=4, mask_channels=2,
    mask_convs=1, detections_per_image=5,
)  # fmt: skip


def _instances(size):
    """One image with one rectangle object: (images (1, 3, S, S), targets)."""
    rng = np.random.default_rng(2)
    images = rng.random((1, 3, size, size))
    masks = np.zeros((1, size, size), bool)
    y0, x0, y1, x1 = size // 4, size // 5, size * 5 // 8, size * 11 // 16
    masks[0, y0:y1, x0:x1] = True
    images[0, :, y0:y1, x0:x1] = 0.9
    boxes = np.array([[x0, y0, x1, y1]], np.float32)
    return images, [{"boxes": boxes, "labels": np.array([1]), "masks": masks}]


def maskrcnn_step(device, size=32, dtype=np.float64, **config):
    """One SGD step of a freshly seeded Mask R-CNN on ``device``: (losses, state after, model)."""
    md.manual_seed(0)
    model = MaskRCNN(**config)._cast(dtype)
    model.to(device)
    opt = md.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, targets = _instances(size)
    # The same sampling (anchors, proposals) on both devices: one seeded generator each.
    losses = model(
        md.tensor(images.astype(dtype)).to(device), targets, rng=np.random.default_rng(3)
    )
    assert all(v.device == device for v in losses.values())
    total = sum(losses.values())
    opt.zero_grad()
    total.backward()
    opt.step()
    return {k: v.item() for k, v in losses.items()}, model.state_dict(), model


@pytest.mark.slow
def test_maskrcnn_training_step_on_cuda_matches_cpu():
    losses_cpu, state_cpu, model_cpu = maskrcnn_step("cpu", **TINY_MASK_RCNN)
    losses_cuda, state_cuda, model_cuda = maskrcnn_step("cuda", **TINY_MASK_RCNN)
    assert set(losses_cuda) == {
        "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"
    }  # fmt: skip
    for name, value in losses_cpu.items():
        np.testing.assert_allclose(losses_cuda[name], value, rtol=1e-9, atol=1e-12, err_msg=name)
    assert_states_close(state_cuda, state_cpu, rtol=1e-8, atol=1e-10)
    # Inference on the device (detection, per-class NMS, mask paste-back) gives the same result.
    images, _ = _instances(32)
    (det_cpu,) = model_cpu.predict(md.tensor(images))
    (det_cuda,) = model_cuda.predict(md.tensor(images).to("cuda"))
    assert len(det_cuda["boxes"]) > 0
    for key in ("boxes", "scores", "labels", "masks"):
        np.testing.assert_allclose(det_cuda[key], det_cpu[key], rtol=1e-6, atol=1e-6, err_msg=key)


# ------------------------------------------------------------------------------- real GPU


@gpu
@pytest.mark.gpu
def test_gpu_unet_step_at_scale_matches_cpu():
    kw = dict(shape=(2, 3, 64, 64), depth=3, base=8, dtype=np.float32)
    loss_cpu, logits_cpu, state_cpu = unet_step("cpu", **kw)
    loss_cuda, logits_cuda, state_cuda = unet_step("cuda", **kw)
    np.testing.assert_allclose(loss_cuda, loss_cpu, rtol=1e-4)
    np.testing.assert_allclose(logits_cuda, logits_cpu, rtol=1e-3, atol=1e-4)
    assert_states_close(state_cuda, state_cpu, rtol=1e-3, atol=1e-4)


@gpu
@pytest.mark.gpu
def test_gpu_maskrcnn_step_at_scale_matches_cpu():
    losses_cpu, state_cpu, _ = maskrcnn_step("cpu", size=128)
    losses_cuda, state_cuda, _ = maskrcnn_step("cuda", size=128)
    for name, value in losses_cpu.items():
        np.testing.assert_allclose(losses_cuda[name], value, rtol=1e-7, atol=1e-9, err_msg=name)
    assert_states_close(state_cuda, state_cpu, rtol=1e-6, atol=1e-8)
