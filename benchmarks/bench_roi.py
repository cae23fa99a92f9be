"""Benchmark: RoIAlign / RoIPool forward + backward, minidense vs torchvision on the CPU.

Setting of a Faster/Mask R-CNN box head: features 2 x 256 x 50 x 50 (an 800 x 800 image at
stride 16, so spatial_scale = 1/16), 512 random RoIs, float32. Compile time (first call) is
reported apart from the warm time (median of repeated calls). torchvision runs in the same
process when it is importable, with the same thread count (``--threads``, default 2).

    python benchmarks/bench_roi.py [--repeats 7] [--threads 2]
"""

import argparse
import statistics
import time

import _common as bench

THREADS = bench.early_threads()  # before NumPy and Numba are imported

import numpy as np  # noqa: E402

import minidense  # noqa: E402
from minidense.ops.roi import roi_align, roi_pool  # noqa: E402

CASES = [  # (name, op, output size, kwargs)
    ("roi_align 7x7", "align", 7, dict(sampling_ratio=2, aligned=True)),
    ("roi_align 14x14", "align", 14, dict(sampling_ratio=2, aligned=True)),
    ("roi_pool 7x7", "pool", 7, {}),
]
SCALE = 1.0 / 16


def make_inputs(seed=0, N=2, C=256, H=50, W=50, K=512, image=800):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    xy = rng.uniform(0, image - 32, size=(K, 2))
    wh = rng.uniform(16, image / 2, size=(K, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, image)], axis=1)
    batch = rng.integers(0, N, size=(K, 1))
    rois = np.concatenate([batch, boxes], axis=1).astype(np.float32)
    grad = rng.standard_normal((K, C, 14, 14)).astype(np.float32)
    return x, rois, grad


def timed(fn, repeats):
    """(first call seconds, median of ``repeats`` warm calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def ours(kind, size, kw, x, rois, grad):
    def run():
        xt = minidense.tensor(x, requires_grad=True)
        if kind == "align":
            out = roi_align(xt, rois, size, SCALE, **kw)
        else:
            out = roi_pool(xt, rois, size, SCALE)
        out.backward(grad[:, :, :size, :size])
        return out.data, xt.grad.data

    return run


def theirs(kind, size, kw, x, rois, grad):
    import torch
    from torchvision import ops

    xt0, rt = torch.from_numpy(x), torch.from_numpy(rois)
    g = torch.from_numpy(np.ascontiguousarray(grad[:, :, :size, :size]))

    def run():
        xt = xt0.clone().requires_grad_(True)
        if kind == "align":
            out = ops.roi_align(xt, rt, size, SCALE, **kw)
        else:
            out = ops.roi_pool(xt, rt, size, SCALE)
        out.backward(g)
        return out.detach().numpy(), xt.grad.numpy()

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=bench.positive_int, default=7)
    bench.add_threads_argument(p, THREADS)
    bench.add_json_argument(p)
    args = p.parse_args()
    # starts numba's threads, then imports torch with its own OpenMP settings
    torch = bench.import_torch(args.threads, "torchvision")
    have_torch = torch is not None

    x, rois, grad = make_inputs()
    threads = bench.threads_in_effect(torch if have_torch else None)
    print(f"features {x.shape} float32, {len(rois)} RoIs, spatial_scale 1/16, {threads}")
    header = f"{'op (fwd+bwd)':<18}{'compile s':>10}{'ours ms':>10}"
    if have_torch:
        header += f"{'torchvision ms':>16}{'speed-up':>10}{'max |diff|':>12}"
    print(header)
    ops = {}
    for name, kind, size, kw in CASES:
        run = ours(kind, size, kw, x, rois, grad)
        first, warm = timed(run, args.repeats)
        ops[name] = {"minidense": warm * 1e3}
        line = f"{name:<18}{first - warm:>10.2f}{warm * 1e3:>10.1f}"
        if have_torch:
            ref = theirs(kind, size, kw, x, rois, grad)
            _, warm_t = timed(ref, args.repeats)
            (o1, g1), (o2, g2) = run(), ref()
            diff = max(np.abs(o1 - o2).max(), np.abs(g1 - g2).max())
            line += f"{warm_t * 1e3:>16.1f}{warm_t / warm:>9.2f}x{diff:>12.2e}"
            ops[name]["torchvision"] = warm_t * 1e3
        print(line)
    print("compile s = first call minus warm call; near 0 once Numba's on-disk cache is warm.")
    bench.write_json(args.json, "roi", ops, threads)


if __name__ == "__main__":
    main()
