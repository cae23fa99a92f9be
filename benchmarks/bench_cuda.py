"""Benchmark: our CUDA kernels against our CPU kernels, and against PyTorch on the GPU.

Three workloads, each forward + backward in float32:

- roi_align: 2x256x50x50 features, 512 RoIs, 7x7 bins, sampling_ratio 2 (Mask R-CNN's box head);
- conv2d: 8x32x64x64, 32 filters 3x3, padding 1;
- a U-Net training step (depth 3, base 16, 4x3x128x128 images, cross-entropy, SGD).

Columns: minidense on the CPU (Numba kernels + BLAS), minidense on "cuda" (our Numba CUDA
kernels, including the generic math of ``minidense.backend.cuda``), and PyTorch on the GPU when
torch is importable and sees one (roi_align and conv2d). Times are medians of warm runs, with the
GPU synchronised before each clock read; the first (compiling) call is not counted.

    python benchmarks/bench_cuda.py [--repeats 10] [--small]

Without a CUDA GPU it says so and times the CPU column only (``--small`` shrinks every shape, e.g.
to try the script itself under NUMBA_ENABLE_CUDASIM=1, where the CUDA column is the simulator's).
"""

import argparse
import statistics
import time

import numpy as np
from _common import positive_int
from numba import config as numba_config
from numba import cuda

import minidense as md
import minidense.functional as F
from minidense.backend import cuda as C
from minidense.models import UNet
from minidense.ops.conv import conv2d
from minidense.ops.roi import roi_align

try:
    import torch
    import torchvision.ops as tvo
except ImportError:  # the benchmark still compares our two targets
    torch = tvo = None


def gpu_available():
    return bool(numba_config.ENABLE_CUDASIM) or cuda.is_available()


def sync(device):
    if device == "cuda":
        cuda.synchronize()


# ----------------------------------------------------------------------------- inputs


def make_inputs(small, seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    if small:
        N, C, H, K, conv, unet = 1, 4, 8, 6, (1, 2, 8, 8), (1, 1, 16, 16)
    else:
        N, C, H, K, conv, unet = 2, 256, 50, 512, (8, 32, 64, 64), (4, 3, 128, 128)
    xy = rng.uniform(0, H * 16 * 0.7, (K, 2))
    wh = rng.uniform(16, H * 16 * 0.3, (K, 2))
    rois = np.concatenate([rng.integers(0, N, (K, 1)), xy, xy + wh], axis=1).astype(f32)
    return {
        "roi": dict(
            x=rng.standard_normal((N, C, H, H)).astype(f32),
            rois=rois,
            g=rng.standard_normal((K, C, 7, 7)).astype(f32),
        ),
        "conv": dict(
            x=rng.standard_normal(conv).astype(f32),
            w=(rng.standard_normal((conv[1], conv[1], 3, 3)) * 0.1).astype(f32),
            b=rng.standard_normal(conv[1]).astype(f32),
            g=rng.standard_normal(conv).astype(f32),
        ),
        "unet": dict(
            x=rng.random(unet).astype(f32),
            y=rng.integers(0, 2, (unet[0],) + unet[2:]),
            depth=1 if small else 3,
            base=2 if small else 16,
        ),
    }


# ----------------------------------------------------------------------------- minidense


def ours_roi(device, x, rois, g):
    """Returns a callable that runs one forward + backward on ``device``."""
    xt = md.tensor(x).to(device).detach().requires_grad_()
    rt = md.tensor(rois).to(device)
    gt = md.tensor(g).to(device)

    def step():
        xt.grad = None
        roi_align(xt, rt, 7, 1 / 16, 2, aligned=True).backward(gt)
        return xt.grad

    return step


def ours_conv(device, x, w, b, g):
    xt, wt, bt = (md.tensor(a).to(device).detach().requires_grad_() for a in (x, w, b))
    gt = md.tensor(g).to(device)

    def step():
        for t in (xt, wt, bt):
            t.grad = None
        conv2d(xt, wt, bt, padding=1).backward(gt)
        return xt.grad

    return step


def ours_unet(device, x, y, depth, base):
    md.manual_seed(0)
    model = UNet(in_channels=x.shape[1], num_classes=2, depth=depth, base=base).to(device)
    opt = md.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = md.tensor(x).to(device), md.tensor(y).to(device)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    return step


# ----------------------------------------------------------------------------- PyTorch


def torch_roi(x, rois, g):
    dev = "cuda"
    xt = torch.from_numpy(x).to(dev).requires_grad_()
    rt, gt = torch.from_numpy(rois).to(dev), torch.from_numpy(g).to(dev)

    def step():
        xt.grad = None
        tvo.roi_align(xt, rt, 7, 1 / 16, 2, aligned=True).backward(gt)
        return xt.grad

    return step


def torch_conv(x, w, b, g):
    xt, wt, bt = (torch.from_numpy(a).to("cuda").requires_grad_() for a in (x, w, b))
    gt = torch.from_numpy(g).to("cuda")

    def step():
        for t in (xt, wt, bt):
            t.grad = None
        torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(gt)
        return xt.grad

    return step


# ----------------------------------------------------------------------------- driver


def timed(step, repeats, device):
    """(first call, median of warm calls) in milliseconds, the device synchronised around each."""
    sync(device)
    t0 = time.perf_counter()
    step()
    sync(device)
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return first, statistics.median(times)


def agree(ours, theirs, name):
    """Guard against timing wrong code: the input gradients must agree."""
    a = ours.numpy() if hasattr(ours, "numpy") else np.asarray(ours)
    b = theirs.detach().cpu().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    err = float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))
    if err > 1e-3:
        raise AssertionError(f"{name}: results disagree (relative error {err:.2e})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=10)
    parser.add_argument("--small", action="store_true", help="tiny shapes (e.g. for the simulator)")
    args = parser.parse_args(argv)

    has_gpu = gpu_available()
    if not has_gpu:
        print(
            "no CUDA GPU found (numba.cuda.is_available() is False): timing the CPU column only.\n"
            "Run this on a machine with an NVIDIA GPU to compare our CUDA kernels."
        )
    has_torch = torch is not None and has_gpu and not C.SIMULATOR and torch.cuda.is_available()
    data = make_inputs(args.small)
    cases = [
        ("roi_align fwd+bwd", ours_roi, data["roi"], torch_roi),
        ("conv2d fwd+bwd", ours_conv, data["conv"], torch_conv),
        ("U-Net training step", ours_unet, data["unet"], None),
    ]
    columns = ("ours cpu", "ours cuda", "torch cuda")
    header = f"{'workload':22s} " + " ".join(f"{c:>12s}" for c in columns) + f" {'speed-up':>9s}"
    rows = []
    for name, make, inputs, make_torch in cases:
        cpu_step = make("cpu", **inputs)
        _, t_cpu = timed(cpu_step, args.repeats, "cpu")
        t_cuda = t_torch = None
        if has_gpu:
            cuda_step = make("cuda", **inputs)
            _, t_cuda = timed(cuda_step, args.repeats, "cuda")
            if make_torch is None:
                agree(cuda_step(), cpu_step(), name)
            else:
                agree(cuda_step(), cpu_step(), name + " (cpu vs cuda)")
        if has_torch and make_torch is not None:
            torch_step = make_torch(**inputs)
            _, t_torch = timed(torch_step, args.repeats, "cuda")
            agree(make("cuda", **inputs)(), torch_step(), name + " (ours vs torch)")
        rows.append((name, t_cpu, t_cuda, t_torch))

    def ms(t):
        return f"{t:10.2f}ms" if t is not None else f"{'-':>12s}"

    print(
        f"\nfloat32, median of {args.repeats} warm runs" + (" (small shapes)" if args.small else "")
    )
    if C.SIMULATOR:
        print("NUMBA_ENABLE_CUDASIM=1: the cuda column is the (slow) simulator, not a GPU")
    print(header)
    for name, t_cpu, t_cuda, t_torch in rows:
        speed = f"{t_cpu / t_cuda:8.1f}x" if t_cuda else f"{'-':>9s}"
        print(f"{name:22s} {ms(t_cpu)} {ms(t_cuda)} {ms(t_torch)} {speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
