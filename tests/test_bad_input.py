"""Bad input: what a user may get wrong, the exception it raises and the words of its message.

``CASES`` is the table behind ``docs/errors.md`` (one row per case: what you did, what you see,
how to fix it). ``python tests/test_bad_input.py`` prints that table with the messages exactly as
they read now, to paste into the docs when a message changes.

The second half checks the inputs that look odd but must *work*: non-contiguous and
negative-stride arrays, empty batches, zero RoIs.
"""

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple
from unittest import mock

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # as conftest.py does, for `python this.py`
os.environ.setdefault("MINIDENSE_FAST", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minidense as md  # noqa: E402
import minidense.functional as F  # noqa: E402
from minidense import nn, optim  # noqa: E402
from minidense.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from minidense.data import DataLoader, ShapesInstances, hflip, masks_to_boxes  # noqa: E402
from minidense.experiments.maskrcnn import train_maskrcnn  # noqa: E402
from minidense.experiments.segmentation import train_segmentation  # noqa: E402
from minidense.experiments.training import NonFiniteLossError  # noqa: E402
from minidense.metrics import confusion_matrix  # noqa: E402
from minidense.metrics.coco import COCOEvaluator  # noqa: E402
from minidense.models import UNet  # noqa: E402
from minidense.models.maskrcnn import MaskRCNN, MaskRCNNConfig  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
TINY_SEG = dict(image_size=16, n_train=4, n_test=2, batch_size=4, base=4, depth=1, progress=False)
SMALL_RCNN = dict(
    widths=(8, 16, 16, 16, 16), rpn_channels=16, box_fc=32, mask_channels=8, mask_convs=1,
    mask_pool=7, mask_size=14, rpn_batch_per_image=64, box_batch_per_image=32,
    rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=30,
)  # fmt: skip


class Case(NamedTuple):
    id: str
    did: str  # "what you did", as the docs table says it (no '|')
    call: object  # callable(tmp_path) that must raise
    error: type
    match: str  # regex searched in str(exception)
    fix: str  # "how to fix", for the docs table


# ------------------------------------------------------------------------------ helpers


def rand(*shape, dtype=np.float32):
    return md.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


def images(n=1, c=3, h=8, w=8, dtype=np.float32):
    return rand(n, c, h, w, dtype=dtype)


def unet():
    md.manual_seed(0)
    return UNet(3, 2, depth=1, base=4)


def rcnn_batch(**change):
    """One 64×64 image with one square, as ShapesInstances gives it, and targets to break."""
    image = np.zeros((1, 3, 64, 64), np.float32)
    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0, 10:30, 12:40] = 1
    target = {"boxes": np.array([[12.0, 10, 40, 30]]), "labels": np.array([1]), "masks": mask}
    target.update({k: v(target) for k, v in change.items()})
    return image, [target]


def rcnn_loss(**change):
    image, targets = rcnn_batch(**change)
    return MaskRCNN(**SMALL_RCNN)(image, targets)


def coco_add(pred=None, target=None, num_classes=2, iou_type="bbox"):
    p = {"boxes": [[0.0, 0, 4, 4]], "scores": [0.9], "labels": [0],
         "masks": np.ones((1, 8, 8), bool)}  # fmt: skip
    t = {"boxes": [[0.0, 0, 4, 4]], "labels": [0], "masks": np.ones((1, 8, 8), bool)}
    p.update(pred or {})
    t.update(target or {})
    COCOEvaluator(num_classes, iou_type).add(0, p, t)


def cli(*argv):
    """Run the command line in this process; raise SystemExit('exit CODE: last stderr line')."""
    from minidense.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    lines = err.getvalue().strip().splitlines() or [""]
    raise SystemExit(f"exit {code}: {lines[-1]}")


def check_cuda_without_compilers(tmp):
    """``check-cuda`` where neither NVIDIA's wheel nor PATH has ptxas, with the simulator off as
    outside the tests."""
    from minidense.cudacheck import compile as nv

    with mock.patch.object(nv, "find_nvidia_binary_utility", None), \
            mock.patch("shutil.which", return_value=None), \
            mock.patch.object(nv.numba.config, "ENABLE_CUDASIM", 0):  # fmt: skip
        cli("check-cuda")


def truncated_checkpoint(tmp):
    path = tmp / "ckpt.npz"
    save_checkpoint(path, unet().state_dict(), epoch=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return load_checkpoint(path)


def other_architecture(tmp, **kw):
    path = tmp / "ckpt.npz"
    md.manual_seed(0)
    save_checkpoint(path, UNet(3, 2, depth=1, base=8).state_dict())
    UNet(3, 2, **kw).load_state_dict(load_checkpoint(path)["model"])


def nan_unet_training(tmp):
    from minidense.experiments import segmentation as seg

    real = seg.cross_entropy
    with mock.patch.object(seg, "cross_entropy", lambda y, t: real(y, t) * float("nan")):
        seg.train_segmentation("unet", epochs=1, plots=False, **TINY_SEG)


def nan_maskrcnn_training(tmp):
    """The mask loss turns NaN in the first step: training stops and names the term."""
    from minidense.experiments.maskrcnn import train_maskrcnn

    real = MaskRCNN.forward

    def forward(self, images, targets=None, rng=None):
        losses = real(self, images, targets, rng)
        losses["loss_mask"] = losses["loss_mask"] * float("nan")
        return losses

    with mock.patch.object(MaskRCNN, "forward", forward):
        train_maskrcnn(epochs=1, n_train=1, n_test=1, image_size=64, batch_size=1,
                       progress=False, plots=False)  # fmt: skip


def earlier_run(tmp):
    """``train-unet --out`` a folder holding a checkpoint, without --resume: refused before any
    data is made (a stand-in file will do: the check only looks for a checkpoint there)."""
    out = tmp / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"stand-in")
    cli("train-unet", "--out", str(out))


def optimizer_on(params):
    return optim.SGD(params, lr=0.1)


def inplace_on_a_parameter(tmp):
    p = nn.Linear(2, 2).weight
    p -= 0.1 * md.ones(2, 2)


def modified_saved_tensor(tmp):
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # exp saves its output for the backward
    y += 1
    y.sum().backward()


def view_made_under_no_grad(tmp):
    y = md.tensor([1.0, 2.0], requires_grad=True) * 2
    with md.no_grad():
        v = y[:1]
    v *= 3


def assign_grad(value):
    p = nn.Linear(3, 2).weight
    p.grad = value


def disk_full(tmp):
    from minidense.experiments import segmentation

    full = OSError(28, "No space left on device", "runs/unet/checkpoint.npz")
    with mock.patch.object(segmentation, "train_segmentation", side_effect=full):
        cli("train-unet", "--out", str(tmp / "run"))


def checkpoint_is_a_folder(tmp):
    (tmp / "run" / "checkpoint.npz").mkdir(parents=True)
    cli("train-unet", "--out", str(tmp / "run"), "--resume")


# ------------------------------------------------------------------------------ the table

TITLES = {
    "dtype": "Dtypes", "layout": "Layouts, shapes and devices", "ops": "Op arguments",
    "boxes": "Boxes", "losses": "Losses", "layers": "Layers", "state": "Model state (state_dict)",
    "optim": "Optimizers", "models": "Models", "data": "Data", "metrics": "Metrics",
    "autograd": "In-place updates and gradients", "files": "Checkpoint files",
    "training": "Training", "commands": "Command line",
}  # fmt: skip
GROUPS = {group: [] for group in TITLES}


def case(group, id, did, call, error, match, fix):
    GROUPS[group].append(Case(id, did, call, error, match, fix))


# fmt: off
# --- dtypes
case("dtype", "float16", "made a tensor from a float16 array",
     lambda t: md.tensor(np.ones(3, np.float16)), TypeError, r"float16.*astype\(np.float32\)",
     "convert first: `md.tensor(x.astype(np.float32))`")
case("dtype", "uint8-images", "fed uint8 images (0..255) to a model",
     lambda t: unet()(md.tensor(np.zeros((1, 3, 8, 8), np.uint8))), TypeError,
     r"float images.*astype\(np.float32\) / 255",
     "scale to float in [0, 1]: `x.astype(np.float32) / 255`")
case("dtype", "float64-images", "fed float64 images to a float32 model",
     lambda t: unet()(images(dtype=np.float64)), TypeError,
     r"parameters are float32 but the images are float64",
     "`x.astype(np.float32)`, or `model.double()` for float64 everywhere")
case("dtype", "int-logits", "gave integer logits to cross_entropy",
     lambda t: F.cross_entropy(md.tensor([[1, 2]]), md.tensor([0])), TypeError,
     r"cross_entropy: input must be float32 or float64", "pass the model's float output")
case("dtype", "gradcheck-float32", "ran gradcheck on float32 inputs",
     lambda t: md.gradcheck(lambda a: a * a, [md.tensor([1.0], requires_grad=True)]), TypeError,
     r"input 0 is float32; use float64",
     "`md.tensor(x, dtype=np.float64, requires_grad=True)` (and `model.double()`)")
case("dtype", "unpool-int32-indices", "gave max_unpool2d int32 indices",
     lambda t: F.max_unpool2d(images(1, 1, 2, 2), md.tensor(np.zeros((1, 1, 2, 2), np.int32)), 2),
     TypeError, r"indices must be int64 \(from max_pool2d\)",
     "pass the indices `max_pool2d(..., return_indices=True)` returned, unchanged")
case("dtype", "requires-grad-string", "passed requires_grad a string",
     lambda t: md.tensor([1.0], requires_grad="yes"), TypeError,
     r"requires_grad must be True or False, got 'yes'", "`requires_grad=True`")
case("dtype", "backward-grad-string", "passed backward a grad that is not numbers",
     lambda t: (md.tensor([1.0], requires_grad=True) * 2).backward("a"), TypeError,
     r"grad must be a Tensor or an array of numbers, got str",
     "a Tensor or array of the output's shape, e.g. `md.ones_like(y)`")
case("dtype", "seed-string", "seeded with a string",
     lambda t: md.manual_seed("a"), ValueError, r"seed must be a non-negative int, got 'a'",
     "`md.manual_seed(0)`")
case("dtype", "arange-zero-step", "asked arange for a zero step",
     lambda t: md.arange(0, 4, 0), ValueError, r"arange: step must not be zero",
     "a non-zero step")
case("dtype", "inplace-int-float", "added a float in place to an integer tensor",
     lambda t: md.tensor([1, 2]).add_(0.5), TypeError,
     r"add_: result type float32 can't be cast to the desired output type int64",
     "`t = t + 0.5` (a new float tensor), or make t float first")
case("dtype", "layer-float64-input", "fed float64 input to a float32 layer",
     lambda t: nn.Conv2d(3, 4, 3)(images(dtype=np.float64)), TypeError,
     r"Conv2d's parameters are float32 but the input is float64",
     "`x.astype(np.float32)`, or `layer.double()`")
case("dtype", "unpool-float-indices", "gave max_unpool2d float indices",
     lambda t: F.max_unpool2d(images(1, 1, 2, 2), md.tensor(np.zeros((1, 1, 2, 2))), 2),
     TypeError, r"indices must be int64 \(from max_pool2d\), got float64",
     "pass the indices `max_pool2d(..., return_indices=True)` returned, unchanged")
case("dtype", "target-float64", "gave mse_loss a float64 target for a float32 output",
     lambda t: F.mse_loss(rand(3), md.tensor(np.ones(3))), TypeError,
     r"mse_loss: target is float64 but input is float32", "`target.astype(np.float32)`")
# --- layouts and devices
case("layout", "nhwc-model", "fed an (N, H, W, C) batch to a model",
     lambda t: unet()(images(1, 8, 8, 3)), ValueError,
     r"looks like \(N, H, W, C\); use x\.permute\(0, 3, 1, 2\)", "`x.permute(0, 3, 1, 2)`")
case("layout", "nhwc-conv", "fed an (N, H, W, C) batch to nn.Conv2d",
     lambda t: nn.Conv2d(3, 4, 3)(images(1, 8, 8, 3)), ValueError,
     r"Conv2d expects \(N, 3, H, W\).*permute\(0, 3, 1, 2\)", "`x.permute(0, 3, 1, 2)`")
case("layout", "nhwc-maskrcnn", "gave Mask R-CNN (N, H, W, C) images",
     lambda t: MaskRCNN(**SMALL_RCNN).predict(np.zeros((1, 64, 64, 3), np.float32)), ValueError,
     r"MaskRCNN expects 3 input channels.*permute\(0, 3, 1, 2\)",
     "`np.transpose(images, (0, 3, 1, 2))` or `x.permute(0, 3, 1, 2)`")
case("layout", "no-batch-axis", "fed one (C, H, W) image to a model",
     lambda t: unet()(rand(3, 8, 8)), ValueError, r"expects a batch \(N, C, H, W\)",
     "add the batch axis: `x[None]` or `x.unsqueeze(0)`")
case("layout", "ndarray-model", "fed a NumPy array to a segmentation model",
     lambda t: unet()(np.zeros((1, 3, 8, 8), np.float32)), TypeError,
     r"UNet expects a minidense Tensor.*minidense\.tensor\(x\)", "`model(md.tensor(x))`")
case("layout", "too-small", "fed images smaller than the model's downsampling",
     lambda t: UNet(3, 2, depth=3, base=4)(images(1, 3, 4, 4)), ValueError,
     r"UNet\(depth=3\) halves H and W 3 times, so they must be at least 8",
     "larger images, or a smaller `depth`")
case("layout", "mixed-devices", "combined a CPU and a CUDA tensor",
     lambda t: md.ones(2) + md.ones(2).to("cuda"), ValueError,
     r"all tensors must be on one device.*move them with \.to\(\)",
     "move one: `a.to('cuda')` or `b.cpu()`")
# --- ops
case("ops", "conv-groups", "used conv2d groups that do not divide the channels",
     lambda t: F.conv2d(images(1, 3, 4, 4), rand(2, 1, 1, 1), groups=2), ValueError,
     r"input channels \(3\) must be divisible by groups \(2\)",
     "choose `groups` dividing C_in and C_out; weight is (C_out, C_in/groups, kH, kW)")
case("ops", "conv-channels", "gave conv2d a weight for other input channels",
     lambda t: F.conv2d(images(1, 4, 4, 4), rand(2, 3, 1, 1)), ValueError,
     r"expects 3 input channels with groups=1, but input has 4",
     "weight must be (C_out, C_in, kH, kW) for input (N, C_in, H, W)")
case("ops", "interp-size-and-scale", "gave interpolate both size and scale_factor",
     lambda t: F.interpolate(images(1, 1, 2, 2), size=4, scale_factor=2), ValueError,
     r"give exactly one of size and scale_factor", "pass only one of them")
case("ops", "upsample-size-and-scale", "built nn.Upsample with both size and scale_factor",
     lambda t: nn.Upsample(size=4, scale_factor=2), ValueError,
     r"Upsample: give exactly one of size and scale_factor", "pass only one of them")
case("ops", "sampling-ratio-float", "gave roi_align sampling_ratio=1.5",
     lambda t: F.roi_align(images(1, 1, 4, 4), np.array([[0, 0, 0, 2, 2.0]]), 2,
                           sampling_ratio=1.5), TypeError,
     r"sampling_ratio must be an int \(<= 0 means adaptive\), got 1\.5",
     "an int: samples per bin side, or `-1` for adaptive")
case("ops", "aligned-string", "gave roi_align aligned='no'",
     lambda t: F.roi_align(images(1, 1, 4, 4), np.array([[0, 0, 0, 2, 2.0]]), 2, aligned="no"),
     TypeError, r"aligned must be True or False, got 'no'",
     "a bool (a non-empty string would silently mean True)")
case("ops", "leaky-slope", "gave leaky_relu a string slope",
     lambda t: F.leaky_relu(rand(3), "0.1"), TypeError, r"negative_slope must be a number",
     "a float: `F.leaky_relu(x, 0.1)`")
# --- boxes
case("boxes", "xywh-roi", "gave roi_align (x, y, w, h) boxes",
     lambda t: F.roi_align(images(1, 1, 8, 8), [np.array([[4.0, 4, 2, 2]])], 2), ValueError,
     r"expected x2 >= x1 and y2 >= y1; boxes are corners \(x1, y1, x2, y2\).*x2 = x \+ w",
     "`np.concatenate([xy, xy + wh], 1)`")
case("boxes", "nan-box", "gave roi_align a box with NaN/Inf",
     lambda t: F.roi_align(images(1, 1, 8, 8), np.array([[0, 1, np.nan, 3, 3.0]]), 2),
     ValueError, r"boxes row 0 has a NaN or infinite value",
     "find where the box came from (e.g. a diverged regression); drop or clip it")
case("boxes", "batch-index", "gave a RoI a batch index past the batch",
     lambda t: F.roi_pool(images(2, 1, 8, 8), np.array([[2, 1, 1, 3, 3.0]]), 2), ValueError,
     r"batch index 2\.0, expected an integer in \[0, 2\)",
     "column 0 of a (K, 5) RoI is the image index in the batch")
case("boxes", "roi-k4", "gave roi_align a (K, 4) array",
     lambda t: F.roi_align(images(1, 1, 8, 8), np.array([[1, 1, 3, 3.0]]), 2), ValueError,
     r"boxes must have shape \(K, 5\) as \(batch_index, x1, y1, x2, y2\), or be a list",
     "prepend the batch index, or pass a list with one (K_i, 4) array per image")
case("boxes", "nms-k5", "gave nms (K, 5) RoIs",
     lambda t: F.nms(np.zeros((2, 5)), np.zeros(2), 0.5), ValueError,
     r"nms: boxes must have shape \(K, 4\) as \(x1, y1, x2, y2\), got \(2, 5\)",
     "drop the batch column: `rois[:, 1:]`; use batched_nms for per-image/class NMS")
case("boxes", "nms-xywh", "gave nms (x, y, w, h) boxes",
     lambda t: F.nms(np.array([[5.0, 5, 2, 2]]), np.ones(1), 0.5), ValueError,
     r"nms: boxes row 0 .* expected x2 >= x1 and y2 >= y1.*x2 = x \+ w",
     "convert to corners (x1, y1, x2, y2)")
case("boxes", "nms-inf", "gave nms an infinite box",
     lambda t: F.nms(np.array([[0, 0, np.inf, 1.0]]), np.ones(1), 0.5), ValueError,
     r"boxes row 0 is not finite", "drop or clip non-finite boxes before NMS")
# --- losses
case("losses", "label-too-large", "gave cross_entropy a label >= the number of classes",
     lambda t: F.cross_entropy(rand(2, 3), md.tensor([0, 5])), ValueError,
     r"class 5, outside \[0, 3\) for 3 classes.*ignore_index",
     "one output channel per class (num_classes = max label + 1); mark pixels to skip with "
     "`ignore_index`")
case("losses", "loss-ndarray", "gave binary_cross_entropy_with_logits a NumPy input",
     lambda t: F.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3)), TypeError,
     r"input must be a minidense Tensor \(the model's output\)",
     "pass the model's output Tensor; targets may be arrays")
case("losses", "beta-nan", "gave smooth_l1_loss beta=nan",
     lambda t: F.smooth_l1_loss(rand(3), rand(3), beta=float("nan")), ValueError,
     r"beta must be a finite number >= 0, got nan", "a finite beta >= 0 (0 is plain L1)")
# --- layers
case("layers", "conv-kernel-0", "built nn.Conv2d with kernel_size=0",
     lambda t: nn.Conv2d(1, 1, 0), ValueError, r"kernel_size must be positive, got \(0, 0\)",
     "kernel_size >= 1 (stride, dilation >= 1, padding >= 0)")
case("layers", "bn-momentum", "built nn.BatchNorm2d with momentum=2",
     lambda t: nn.BatchNorm2d(4, momentum=2), ValueError,
     r"momentum must be a finite number in \[0, 1\], got 2", "momentum in [0, 1] (default 0.1)")
case("layers", "gn-groups", "built nn.GroupNorm with 0 groups",
     lambda t: nn.GroupNorm(0, 4), ValueError, r"num_groups must be a positive integer, got 0",
     "a num_groups that divides num_channels")
case("layers", "roialign-size-0", "built nn.RoIAlign with output_size=0",
     lambda t: nn.RoIAlign(0), ValueError, r"RoIAlign: output_size must be positive, got 0",
     "an int or (PH, PW) >= 1, e.g. 7")
case("layers", "dropout-p", "built nn.Dropout with p='0.5'",
     lambda t: nn.Dropout("0.5"), TypeError, r"p must be a number in \[0, 1\)", "`nn.Dropout(0.5)`")
case("layers", "bn-empty-batch", "trained a BatchNorm model on an empty batch",
     lambda t: unet()(images(0, 3, 8, 8)), ValueError,
     r"batch_norm(_relu)? in training got an empty batch \(0, 4, 8, 8\).*model\.eval\(\)",
     "skip empty batches (in eval mode they work)")
case("layers", "init-mode", "initialised a weight with mode='fan_avg'",
     lambda t: nn.init.kaiming_normal_(nn.Parameter(np.zeros((2, 2))), mode="fan_avg"),
     ValueError, r"mode must be 'fan_in' or 'fan_out', got 'fan_avg'", "one of the two")
case("layers", "layer-0d", "gave nn.Linear a 0-d tensor",
     lambda t: nn.Linear(3, 2)(md.tensor(1.0)), ValueError,
     r"Linear expects an input with at least 1 dimension \(\.\.\., 3\), got shape \(\)",
     "a batch `(N, in_features)`: `x.reshape(1, -1)` for a single sample")
case("layers", "layer-list", "gave nn.BatchNorm2d a plain list",
     lambda t: nn.BatchNorm2d(3)([[0.0, 1.0, 2.0]]), TypeError,
     r"BatchNorm2d expects a minidense Tensor \(N, 3, H, W\), got list",
     "`md.tensor(x)` of shape (N, C, H, W)")
case("layers", "linear-features", "gave nn.Linear(3, 2) rows of 5 features",
     lambda t: nn.Linear(3, 2)(md.zeros(4, 5)), ValueError,
     r"Linear expects \(\.\.\., 3\), got shape \(4, 5\)",
     "the last axis holds in_features; check the layer's size")
case("layers", "relu-ndarray", "gave F.relu a NumPy array",
     lambda t: F.relu(np.ones(3)), TypeError,
     r"relu: input must be a minidense Tensor, got ndarray", "`F.relu(md.tensor(x))`")
# --- model state
case("state", "state-missing-keys", "loaded a state_dict with missing keys",
     lambda t: nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2))}), KeyError,
     r"missing keys \['bias'\], unexpected keys \[\]",
     "load the matching architecture; `strict=False` loads the common keys")
case("state", "state-other-shape", "loaded a checkpoint of another width",
     lambda t: other_architecture(t, depth=1, base=4), ValueError,
     r"state_dict entry 'down\.0\.0\.weight' has shape \(16, 8, 3, 3\), but this model's is "
     r"\(8, 4, 3, 3\)", "build the model with the checkpoint's configuration")
case("state", "state-other-depth", "loaded a checkpoint of another depth",
     lambda t: other_architecture(t, depth=2, base=8), KeyError,
     r"missing keys \['down\.1\.0\.weight'", "build the model with the checkpoint's configuration")
case("state", "state-not-dict", "passed load_state_dict a list",
     lambda t: nn.Linear(2, 2).load_state_dict([np.zeros((2, 2))]), TypeError,
     r"expects a dict of arrays by name.*load_checkpoint\(path\)\['model'\]",
     "pass `load_checkpoint(path)['model']` or `model.state_dict()`")
# --- optimizers
case("optim", "duplicate-params", "listed a parameter twice for an optimizer",
     lambda t: optimizer_on([(w := nn.Linear(2, 2).weight), w]), ValueError,
     r"params\[1\] is the same Parameter as params\[0\]", "list each parameter once")
case("optim", "optim-empty", "made an optimizer over an empty list",
     lambda t: optimizer_on([]), ValueError, r"optimizer got an empty parameter list",
     "check the model has parameters (and that a generator was not used up)")
case("optim", "optim-module", "gave an optimizer the model itself",
     lambda t: optimizer_on(nn.Linear(2, 2)), TypeError,
     r"params must be an iterable of Parameters, got a Linear; pass model\.parameters\(\)",
     "`optim.SGD(model.parameters(), lr=...)`")
case("optim", "clip-norm", "clipped gradients to max_norm=0",
     lambda t: optim.clip_grad_norm_([nn.Parameter(np.zeros(2))], 0), ValueError,
     r"max_norm must be a finite number > 0", "a positive max_norm, e.g. 5.0")
# --- models
case("models", "unet-classes", "built a UNet with num_classes=0",
     lambda t: UNet(3, 0), ValueError, r"UNet: num_classes must be a positive integer, got 0",
     "num_classes counts the classes, background included")
case("models", "rcnn-label", "gave Mask R-CNN a label >= num_classes",
     lambda t: rcnn_loss(labels=lambda d: np.array([4])), ValueError,
     r"targets\[0\]\['labels'\] must be in 1\.\.3 \(0 is background\)",
     "labels 1..num_classes-1; raise `num_classes` (it counts the background)")
case("models", "rcnn-mask-size", "gave Mask R-CNN masks of another size than the image",
     lambda t: rcnn_loss(masks=lambda d: d["masks"][:, :32]), ValueError,
     r"targets\[0\]\['masks'\] must have shape \(1, 64, 64\) \(the image's size\), got \(1, 32, 64\)",
     "one full-image (H, W) mask per box")
case("models", "rcnn-xywh", "gave Mask R-CNN (x, y, w, h) target boxes",
     lambda t: rcnn_loss(boxes=lambda d: np.array([[12.0, 10, 28, 20]]) * [1, 1, 0.3, 0.3]),
     ValueError, r"targets\[0\]\['boxes'\] must be \(x1, y1, x2, y2\).*x2 = x \+ w",
     "convert to corners (x1, y1, x2, y2)")
case("models", "rcnn-nan-box", "gave Mask R-CNN a NaN target box",
     lambda t: rcnn_loss(boxes=lambda d: np.array([[12.0, np.nan, 40, 30]])), ValueError,
     r"targets\[0\]\['boxes'\] must be finite \(K, 4\)", "drop or fix the box")
case("models", "rcnn-config", "set an IoU threshold above 1 in MaskRCNNConfig",
     lambda t: MaskRCNNConfig(rpn_fg_iou=7), ValueError,
     r"rpn_fg_iou must be a number in \[0, 1\], got 7",
     "IoUs, fractions and thresholds lie in [0, 1]")
case("models", "rcnn-sampling-ratio", "set sampling_ratio=1.5 in MaskRCNNConfig",
     lambda t: MaskRCNNConfig(sampling_ratio=1.5), ValueError,
     r"sampling_ratio must be an int \(<= 0: adaptive\), got 1\.5", "an int, e.g. 2")
case("models", "rcnn-label-names", "gave Mask R-CNN class names as labels",
     lambda t: rcnn_loss(labels=lambda d: np.array(["square"])), TypeError,
     r"targets\[0\]\['labels'\] must be a numeric array, got dtype <U6",
     "class indices 1..num_classes-1: map names to ints first")
case("models", "rcnn-image-list-rank", "gave Mask R-CNN a list holding a batch",
     lambda t: MaskRCNN(**SMALL_RCNN).predict([np.zeros((1, 3, 64, 64), np.float32)]),
     ValueError, r"images\[0\] must be one \(C, H, W\) image, got shape \(1, 3, 64, 64\)",
     "a list of (C, H, W) images (of any sizes), or one (N, C, H, W) batch")
# --- data
case("data", "batch-size-0", "made a DataLoader with batch_size=0",
     lambda t: DataLoader(ShapesInstances(2, image_size=16), batch_size=0), ValueError,
     r"batch_size must be >= 1, got 0", "batch_size >= 1")
case("data", "image-size-4", "asked ShapesInstances for 4-pixel images",
     lambda t: ShapesInstances(2, image_size=4), ValueError, r"image_size must be >= 16, got 4",
     "image_size >= 16 (shapes need room to be told apart)")
case("data", "masks-2d", "gave masks_to_boxes a single (H, W) mask",
     lambda t: masks_to_boxes(np.zeros((4, 4), bool)), ValueError,
     r"masks must be \(K, H, W\).*mask\[None\]", "`masks_to_boxes(mask[None])`")
case("data", "flip-mask-size", "flipped an image with masks of another size",
     lambda t: hflip(np.zeros((3, 4, 4)), {"masks": np.zeros((1, 5, 5))}),
     ValueError, r"target\['masks'\] has size \(5, 5\) but the image \(C, H, W\) has \(4, 4\)",
     "masks (K, H, W) at the image's size")
# --- metrics
case("metrics", "metric-label", "gave confusion_matrix a label >= num_classes",
     lambda t: confusion_matrix(np.zeros(2, int), np.array([0, 255]), 3), ValueError,
     r"target contains label 255, outside \[0, 2\] for num_classes=3.*ignore_index",
     "`ignore_index=255` for void pixels, or a larger num_classes")
case("metrics", "metric-scores", "gave confusion_matrix float scores",
     lambda t: confusion_matrix(np.zeros((2, 3), np.float32), np.zeros(2, int), 3), ValueError,
     r"pred looks like class scores \(N, K, \.\.\.\): take pred\.argmax\(axis=1\)",
     "`scores.argmax(axis=1)`")
case("metrics", "coco-mask-size", "gave the COCO evaluator masks of different sizes",
     lambda t: coco_add(target={"masks": np.ones((1, 9, 9), bool)}, iou_type="segm"),
     ValueError, r"masks of image 0: sizes disagree",
     "predicted and true masks at the image's size (paste masks into the image first)")
case("metrics", "coco-xywh", "gave the COCO evaluator (x, y, w, h) boxes",
     lambda t: coco_add(pred={"boxes": [[3.0, 3, 2, 2]]}), ValueError,
     r"pred\['boxes'\] of image 0: boxes must be \(x1, y1, x2, y2\).*x2 = x \+ w",
     "corners (x1, y1, x2, y2); the evaluator converts to COCO's xywh itself")
case("metrics", "coco-label", "gave the COCO evaluator a label >= num_classes",
     lambda t: coco_add(pred={"labels": [2]}), ValueError,
     r"labels must be >= 0 and < num_classes=2, got 2\.\.2", "num_classes counts every label")
case("metrics", "coco-soft-masks", "gave the COCO evaluator soft (probability) masks",
     lambda t: coco_add(pred={"masks": np.full((1, 8, 8), 0.7)}, iou_type="segm"), ValueError,
     r"masks must be binary.*masks > 0\.5", "threshold: `masks > 0.5`")
# --- in-place updates and gradients
case("autograd", "inplace-leaf", "updated a Parameter with `-=` outside `no_grad()`",
     inplace_on_a_parameter, RuntimeError,
     r"sub_: a leaf Variable that requires grad is being used in an in-place operation",
     "`with md.no_grad(): p -= lr * p.grad`")
case("autograd", "inplace-version", "changed in place a value that backward needs",
     modified_saved_tensor, RuntimeError,
     r"one of the variables needed for gradient computation has been modified by an inplace "
     r"operation: .* output 0 of Exp, is at version 1; expected version 0",
     "update after `backward()`, or out of place: `y = y + 1`")
case("autograd", "inplace-nograd-view", "changed in place, with grad on, a view made under no_grad",
     view_made_under_no_grad, RuntimeError, r"this view was made under no_grad\(\)",
     "make the view and the in-place op both inside `no_grad()` or both outside")
case("autograd", "inplace-broadcast", "added a larger tensor in place",
     lambda t: md.zeros(3).add_(md.zeros(2, 3)), ValueError,
     r"add_: output with shape \(3,\) doesn't match the broadcast shape",
     "an in-place result keeps the tensor's shape: `t = t + other`")
case("autograd", "inplace-mask", "set the elements a mask selects: `t[t > 0] = 0`",
     lambda t: md.zeros(3).__setitem__(md.zeros(3) > 0, 0.0), TypeError,
     r"tensor item assignment takes ints, slices, None and \.\.\., got .*F\.where",
     "`t = F.where(t > 0, 0.0, t)` (PyTorch takes masks and index lists here; we do not)")
case("autograd", "inplace-float-mix", "added a float64 tensor in place to a float32 one",
     lambda t: md.zeros(3).add_(md.zeros(3, dtype=np.float64)), TypeError,
     r"add_: mixed float dtypes \(the tensor is float32, other is float64\)",
     "`t += other.float()` (PyTorch casts silently; we refuse, as out of place)")
case("autograd", "inplace-int-overflow", "wrote a number too big for an integer tensor",
     lambda t: md.tensor(np.array([1, 2], np.int32)).__setitem__(0, 1e30), ValueError,
     r"fill_: 1e\+30 does not fit the int32 tensor", "a value in the dtype's range, or a wider dtype")
case("autograd", "grad-ndarray", "assigned a NumPy array to `.grad`",
     lambda t: assign_grad(np.zeros((2, 3), np.float32)), TypeError,
     r"assigned grad expected to be a Tensor or None but got grad of type ndarray",
     "`p.grad = md.tensor(g)`")
case("autograd", "grad-shape", "assigned a `.grad` of the wrong shape",
     lambda t: assign_grad(md.zeros(3, 2)), ValueError,
     r"assigned grad has shape \(3, 2\), but the tensor has \(2, 3\)",
     "a gradient of the parameter's shape, dtype and device")
# --- files
case("files", "ckpt-truncated", "loaded a truncated checkpoint",
     truncated_checkpoint, CheckpointError,
     r"cannot load checkpoint .*(truncated or corrupt|not an \.npz).*earlier checkpoint",
     "use an earlier checkpoint; saves are atomic, so a crash never leaves a half file")
case("files", "ckpt-no-dir", "saved a checkpoint into a missing folder",
     lambda t: save_checkpoint(t / "nope" / "c.npz", {}), FileNotFoundError,
     r"directory .* does not exist.*os\.makedirs", "`os.makedirs(folder, exist_ok=True)`")
# --- training
case("training", "nan-loss-unet", "trained U-Net until its loss went NaN",
     nan_unet_training, NonFiniteLossError, r"loss term 'loss' is nan at epoch 1, step 1",
     "lower the learning rate, check inputs for NaN/Inf; the last good checkpoint is kept")
case("training", "nan-loss-maskrcnn", "trained Mask R-CNN until a loss term went NaN",
     nan_maskrcnn_training, NonFiniteLossError,
     r"loss term 'loss_mask' is nan at epoch 1, step 1",
     "the message names the term: look at that head's inputs; lower the learning rate")
case("training", "zero-test-images", "asked train_segmentation for 0 held-out images",
     lambda t: train_segmentation("unet", n_test=0, **{k: v for k, v in TINY_SEG.items()
                                                      if k != "n_test"}),
     ValueError, r"n_test must be an int >= 1 \(or None for the preset\), got 0",
     "at least 1 (None takes the preset's size)")
case("training", "zero-train-images-rcnn", "asked train_maskrcnn for 0 training images",
     lambda t: train_maskrcnn(n_train=0, epochs=0, progress=False, plots=False), ValueError,
     r"n_train must be an int >= 1", "at least 1 (None takes the preset's size)")
case("training", "bad-model-name", "asked train_segmentation for an unknown model",
     lambda t: train_segmentation("unet3", out=str(t / "run")), ValueError,
     r"model must be one of \('unet', 'segnet', 'fcn'\), got 'unet3'", "one of the listed names")
case("training", "fcn-image-size", "asked train_segmentation for FCN on 48-pixel images",
     lambda t: train_segmentation("fcn", image_size=48, out=str(t / "run")), ValueError,
     r"image_size must be a multiple of 32 for model 'fcn' .*got 48: use 32 or 64",
     "a multiple of 32 (`--image-size 64`); the default for fcn is 32")
# --- commands
case("commands", "cli-unknown-flag", "typed `train-unet --epochz 3`",
     lambda t: cli("train-unet", "--epochz", "3"), SystemExit,
     r"exit 2: .*unrecognized arguments: --epochz 3",
     "`python -m minidense train-unet --help` lists the flags (no abbreviations)")
case("commands", "cli-out-under-file", "gave `--out` a path under a regular file",
     lambda t: (t / "f").write_text("x") and cli("train-unet", "--out", str(t / "f" / "run")),
     SystemExit, r"exit 2: error: --out: cannot create the output directory",
     "a folder you can write to")
case("commands", "cli-lr-nan", "typed `--lr nan`",
     lambda t: cli("train-maskrcnn", "--lr", "nan"), SystemExit,
     r"exit 2: .*argument --lr: must be a positive finite number, got nan", "e.g. `--lr 2e-3`")
case("commands", "cli-seed-negative", "typed `--seed -1`",
     lambda t: cli("train-unet", "--seed", "-1"), SystemExit,
     r"exit 2: .*argument --seed: must be >= 0, got -1", "a seed >= 0")
case("commands", "cli-no-command", "ran `python -m minidense` without a command",
     lambda t: cli(), SystemExit, r"exit 2: .*required: COMMAND",
     "`python -m minidense --help` lists the commands")
case("commands", "cli-out-has-checkpoint", "ran `train-unet` into an `--out` holding a checkpoint",
     earlier_run, SystemExit,
     r"exit 2: error: .*run holds a checkpoint from an earlier run: "
     r"pass --resume to continue it, or choose another --out",
     "`--resume` to continue that run, or another `--out` for a new one")
case("commands", "cli-checkpoint-dir", "ran `train-unet --resume` where checkpoint.npz is a folder",
     checkpoint_is_a_folder, SystemExit, r"exit 2: error: checkpoint path .* is a directory",
     "remove or rename the folder; a checkpoint is a file")
case("commands", "cli-disk-full", "ran out of disk space during a command",
     disk_full, SystemExit,
     r"exit 2: error: No space left on device: 'runs/unet/checkpoint.npz'; free some disk space",
     "free some space or choose another `--out`; the last complete checkpoint is intact")

case("commands", "check-cuda-no-compilers", "ran `check-cuda` without the `cuda` extra",
     check_cuda_without_compilers, SystemExit,
     r'exit 2: check-cuda: ptxas not found; install the CUDA 12 compilers with: '
     r'python3 -m pip install -e "\.\[cuda\]"',
     '`python3 -m pip install -e ".[dev,cuda]"` (no GPU needed)')
case("ops", "conv-nhwc", "gave conv2d an (N, H, W, C) image",
     lambda t: F.conv2d(md.randn(1, 8, 8, 3), md.randn(4, 3, 3, 3)), ValueError,
     r"input has 8; it looks like \(N, H, W, C\): use x.permute\(0, 3, 1, 2\)",
     "channels first: `x.permute(0, 3, 1, 2)`")
case("ops", "interpolate-inf-scale", "asked interpolate for scale_factor=inf",
     lambda t: F.interpolate(md.randn(1, 1, 4, 4), scale_factor=float("inf")), ValueError,
     r"scale_factor must be a positive number or a pair of them, all finite", "a finite factor, or `size=`")
case("ops", "interpolate-align-string", "passed align_corners='yes'",
     lambda t: F.interpolate(md.randn(1, 1, 4, 4), scale_factor=2, mode="bilinear",
                             align_corners="yes"), TypeError,
     r"align_corners must be None, True or False", "`align_corners=True`")
case("ops", "pool-flag-string", "passed ceil_mode='no' to max_pool2d",
     lambda t: F.max_pool2d(md.randn(1, 1, 4, 4), 2, ceil_mode="no"), TypeError,
     r"ceil_mode must be True or False", "`ceil_mode=False`")
case("ops", "pool-window-in-padding", "dilated a pooling window past the whole image",
     lambda t: F.max_pool2d(md.randn(1, 1, 1, 1), 2, padding=1, dilation=2), ValueError,
     r"window 0 lies entirely in the padding", "reduce padding or dilation")
case("ops", "interpolate-empty-plane", "gave interpolate an input with H or W = 0",
     lambda t: F.interpolate(md.tensor(np.zeros((1, 1, 0, 4), np.float32)), scale_factor=2),
     ValueError, r"interpolate: input's spatial size \(H, W\) must be > 0, got 0x4",
     "an input with H, W >= 1 (an empty batch, N = 0, works)")
case("ops", "roi-align-empty-map", "gave roi_align a feature map with H or W = 0",
     lambda t: F.roi_align(md.tensor(np.zeros((1, 1, 4, 0), np.float32)),
                           np.array([[0.0, 0, 0, 2, 2]]), 2), ValueError,
     r"roi_align: input's spatial size \(H, W\) must be > 0, got shape \(1, 1, 4, 0\)",
     "a feature map with H, W >= 1 (zero RoIs, K = 0, work)")

# fmt: on

CASES = [c for cases in GROUPS.values() for c in cases]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_a_clear_error(c, tmp_path):
    with pytest.raises(c.error, match=c.match):
        c.call(tmp_path)


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


def test_docs_errors_table_has_a_row_per_case():
    text = DOCS.read_text()
    missing = [c.id for c in CASES if f"| {c.did} |" not in text]
    assert not missing, f"docs/errors.md lacks rows for {missing}; regenerate it (see module doc)"


# ------------------------------------------------------------------------------ must work


def layouts(a):
    """Views with the values of ``a`` but odd strides (all 4-D)."""
    return {
        "neg-w": a[:, :, :, ::-1],
        "neg-h": a[:, :, ::-1],
        "neg-n": a[::-1],
        "channels-last": np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "gapped": np.repeat(a, 2, axis=3)[..., ::2],
    }


ROIS = np.array([[0, 0.5, 1, 4, 5], [1, 1, 0, 6, 3.5], [1, 2, 2, 2, 2]])
OPS = {
    "conv2d": lambda t, w: F.conv2d(t, w, padding=1, stride=(1, 2)),
    "conv_transpose2d": lambda t, w: F.conv_transpose2d(t, w.permute(1, 0, 2, 3), stride=2),
    "max_pool2d": lambda t, w: F.max_pool2d(t, 2, ceil_mode=True),
    "avg_pool2d": lambda t, w: F.avg_pool2d(t, 3, 2, 1),
    "bilinear": lambda t, w: F.interpolate(t, scale_factor=2, mode="bilinear"),
    "nearest": lambda t, w: F.interpolate(t, size=(5, 9)),
    "bed_of_nails": lambda t, w: F.bed_of_nails(t, 2),
    "roi_align": lambda t, w: F.roi_align(t, ROIS, 2, 0.5, 2, True),
    "roi_pool": lambda t, w: F.roi_pool(t, ROIS, 2, 0.5),
    "roi_warp": lambda t, w: F.roi_warp(t, ROIS[::-1], 3, 0.5),  # negative-stride boxes too
}


def forward_backward(op, x, w):
    t = md.tensor(x, requires_grad=True)
    y = OPS[op](t, md.tensor(w))
    seed = np.arange(y.size).reshape(y.shape) % 5 - 2.0
    (y * md.tensor(seed.astype(x.dtype))).sum().backward()
    return y.numpy(), t.grad.numpy()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odd_strides_give_the_contiguous_result(op, dtype):
    """``md.tensor(x[:, ::-1])`` and friends work: bit-identical to the contiguous copy."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    for name, view in layouts(x).items():
        y_view, g_view = forward_backward(op, view, w)
        y_copy, g_copy = forward_backward(op, np.ascontiguousarray(view), w)
        assert y_view.dtype == dtype
        np.testing.assert_array_equal(y_view, y_copy, err_msg=f"{op} forward, {name}")
        np.testing.assert_array_equal(g_view, g_copy, err_msg=f"{op} backward, {name}")


def test_odd_stride_unpool_indices_and_weights():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 4, 4))
    out, idx = F.max_pool2d(md.tensor(x), 2, return_indices=True)
    flipped = md.tensor(idx.numpy()[:, ::-1])  # negative-stride int64 indices
    got = F.max_unpool2d(md.tensor(out.numpy()[:, ::-1]), flipped, 2).numpy()
    want = F.max_unpool2d(md.tensor(out.numpy()[:, ::-1].copy()), md.tensor(flipped.numpy().copy()),
                          2).numpy()  # fmt: skip
    np.testing.assert_array_equal(got, want)
    w = rng.standard_normal((3, 2, 3, 3))
    x_t = md.tensor(x)
    np.testing.assert_array_equal(
        F.conv2d(x_t, md.tensor(w[:, :, ::-1, ::-1])).numpy(),
        F.conv2d(x_t, md.tensor(w[:, :, ::-1, ::-1].copy())).numpy(),
    )


def test_empty_batch_works_where_it_can():
    x = md.tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    y = F.conv2d(x, rand(4, 3, 3, 3), padding=1)
    assert y.shape == (0, 4, 8, 8)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 8, 8)
    assert F.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert F.interpolate(x, scale_factor=2).shape == (0, 3, 16, 16)
    net = unet().eval()  # evaluation: running statistics, so no batch is needed
    assert net(images(0, 3, 8, 8)).shape == (0, 2, 8, 8)
    assert MaskRCNN(**SMALL_RCNN).predict(np.zeros((0, 3, 64, 64), np.float32)) == []


@pytest.mark.parametrize("op", ["roi_align", "roi_pool", "roi_warp"])
def test_zero_rois_give_an_empty_output_and_a_zero_gradient(op):
    fn = getattr(F, op)
    x = md.tensor(np.ones((2, 3, 5, 5)), requires_grad=True)
    for boxes in (np.zeros((0, 5)), [np.zeros((0, 4)), np.zeros((0, 4))], []):
        y = fn(x, boxes, (2, 3))
        assert y.shape == (0, 3, 2, 3)
        x.grad = None
        (y.sum() + x.sum() * 0).backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3, 5, 5)))


def test_a_zero_epoch_run_works():
    """The learning-rate warm-up used to be longer than such a run (and than one epoch of Mask
    R-CNN, see the nan-loss-maskrcnn case) and refused it."""
    r = train_segmentation("unet", epochs=0, plots=False, **TINY_SEG)
    assert r["history"] == [] and 0.0 <= r["pixel_acc"] <= 1.0


def test_unknown_flag_through_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "minidense", "train-unet", "--epochz", "3"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert "unrecognized arguments: --epochz 3" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ docs table


def _message(c, tmp):
    try:
        c.call(tmp)
    except c.error as e:
        text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        return text.replace(str(tmp), "…")
    raise AssertionError(f"{c.id} did not raise")


def docs_table():
    """The markdown rows of docs/errors.md, by group, with the messages as they read now."""
    out = []
    with tempfile.TemporaryDirectory() as d:
        for group, cases in GROUPS.items():
            out.append(f"\n## {TITLES[group]}\n")
            out.append("| what you did | what you see | how to fix |\n| --- | --- | --- |")
            for c in cases:
                tmp = Path(d) / c.id
                tmp.mkdir()
                msg = _message(c, tmp).replace("|", "\\|").replace("\n", " ")
                if c.error is SystemExit:  # "exit 2: <stderr>"
                    code, _, msg = msg.partition(": ")
                    see = f"{code.replace('exit', 'exit status')}, and on stderr `{msg}`"
                else:
                    see = f"{c.error.__name__}: `{msg}`"
                out.append(f"| {c.did} | {see} | {c.fix} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(docs_table())
