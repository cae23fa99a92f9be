"""One U-Net training step (forward + backward + AdamW) on a 4×3×128×128 batch: minidense vs the
same architecture in PyTorch (when importable), in the same run, same thread count.

    python benchmarks/bench_unet.py [--threads 2] [--repeat 5] [--batch 4] [--size 128]

Prints first-call (compile) and warm times and the ratio: each warm time divided by PyTorch's
(> 1: slower than PyTorch). PyTorch is optional and never a dependency of minidense.
"""

import argparse
import statistics
import sys
import time

import _common as bench

THREADS = bench.early_threads()  # before NumPy and Numba are imported

# minidense before numba: it picks numba's threading layer, and start_numba_threads() below
# starts numba's threads on whatever layer is chosen by then (OpenMP's spinning threads made a
# step 2.5-3x slower here).
import minidense as md  # noqa: E402, I001
import numpy as np  # noqa: E402
from minidense.models import UNet  # noqa: E402


def parse():
    # The first paragraph of the docstring, joined: its first line alone stops mid-sentence.
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    bench.add_threads_argument(p, THREADS)
    p.add_argument("--repeat", "--repeats", dest="repeat", type=bench.positive_int, default=5)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--base", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    bench.add_json_argument(p)
    return p.parse_args()


def timed(fn, repeat):
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def make_batch(batch, size):
    """The benchmark's inputs: ``x (batch, 3, size, size)`` float32 and 4-class targets."""
    rng = np.random.default_rng(0)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    return x, rng.integers(0, 4, (batch, size, size))


def minidense_step(args, x, y):
    md.manual_seed(0)
    net = UNet(3, 4, depth=args.depth, base=args.base, upsampling="bilinear")
    opt = md.optim.AdamW(net.parameters(), lr=1e-3)
    xt = md.tensor(x)

    def step():
        loss = md.F.cross_entropy(net(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_step(args, x, y):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as tF

    torch.set_num_threads(args.threads)

    def double_conv(ci, co):
        return tnn.Sequential(
            tnn.Conv2d(ci, co, 3, padding=1, bias=False), tnn.BatchNorm2d(co), tnn.ReLU(),
            tnn.Conv2d(co, co, 3, padding=1, bias=False), tnn.BatchNorm2d(co), tnn.ReLU(),
        )  # fmt: skip

    class Up(tnn.Module):
        def __init__(self, ci, cs, co):
            super().__init__()
            self.up = tnn.Conv2d(ci, ci // 2, 1)
            self.fuse = double_conv(ci // 2 + cs, co)

        def forward(self, x, skip):
            # the 1x1 conv before the interpolation, as minidense's U-Net does (they commute)
            x = tF.interpolate(
                self.up(x), size=skip.shape[2:], mode="bilinear", align_corners=False
            )
            return self.fuse(torch.cat([skip, x], 1))

    class TorchUNet(tnn.Module):  # the same architecture as minidense.models.UNet
        def __init__(self, depth, base):
            super().__init__()
            w = [base * 2**i for i in range(depth + 1)]
            self.inc = double_conv(3, w[0])
            self.down = tnn.ModuleList(double_conv(w[i], w[i + 1]) for i in range(depth))
            self.up = tnn.ModuleList(Up(w[i + 1], w[i], w[i]) for i in reversed(range(depth)))
            self.head = tnn.Conv2d(w[0], 4, 1)

        def forward(self, x):
            skips = [self.inc(x)]
            for d in self.down:
                skips.append(d(tF.max_pool2d(skips[-1], 2)))
            h = skips.pop()
            for u in self.up:
                h = u(h, skips.pop())
            return self.head(h)

    torch.manual_seed(0)
    net = TorchUNet(args.depth, args.base)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = tF.cross_entropy(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main():
    args = parse()
    bench.start_numba_threads(args.threads)
    x, y = make_batch(args.batch, args.size)
    rows = [("minidense", *timed(minidense_step(args, x, y), args.repeat))]
    torch = bench.import_torch(args.threads)  # its own OpenMP settings, not minidense's
    if torch is None:
        print("(torch is not installed: only minidense is timed)", file=sys.stderr)
    else:
        rows.append(("pytorch", *timed(torch_step(args, x, y), args.repeat)))
    shape = f"{args.batch}x3x{args.size}x{args.size}, base {args.base}, depth {args.depth}"
    threads = bench.threads_in_effect(torch)
    print(f"U-Net training step ({shape}), {threads}, median of {args.repeat}")
    print(f"{'':<10} {'first call s':>13} {'warm s':>8} {'ratio':>7}")
    ref_name, _, ref = rows[-1]
    for name, first, warm in rows:
        print(f"{name:<10} {first:>13.2f} {warm:>8.3f} {warm / ref:>6.2f}x")
    print(f"ratio = warm time / {ref_name}'s warm time (> 1: slower than {ref_name})")
    op = f"U-Net training step {shape}"
    bench.write_json(args.json, "unet", {op: {name: warm * 1e3 for name, _, warm in rows}}, threads)


if __name__ == "__main__":
    main()
