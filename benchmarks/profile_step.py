"""Where a training step's time goes, op by op: each autograd Function's forward and backward,
their wall milliseconds per step, the cores they keep busy, and what is left outside the ops.

    python benchmarks/profile_step.py [--model maskrcnn|unet] [--threads 2] [--steps 20]

The step is bench_maskrcnn's (train-maskrcnn's default Mask R-CNN) or bench_unet's (its
4×3×128×128 U-Net batch, base 16, depth 3; ``--size`` changes 128). Every Function's forward and backward is timed as it runs (wall and
process CPU time); "outside the ops" is the rest of the step: the Python of the models and of the
losses' targets (anchors, matching, sampling), the autograd engine, the optimizer's loop. cores
= CPU time / wall time (2.00: both cores busy on two; an op at 1.00 keeps a core idle). Timing
each op adds a few microseconds per op; the step's total is printed beside bench_maskrcnn's.
"""

import argparse
import collections
import sys
import time

import _common as bench

THREADS = bench.early_threads()  # before NumPy and Numba are imported

import minidense  # noqa: E402, F401, I001  (before NumPy and numba: it sets their threads)
from minidense import autograd  # noqa: E402

import bench_maskrcnn  # noqa: E402
import bench_unet  # noqa: E402

WARMUP = 3


def parse():
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--model", choices=("maskrcnn", "unet"), default="maskrcnn")
    bench.add_threads_argument(p, THREADS)
    p.add_argument("--steps", type=bench.positive_int, default=20, help="timed steps")
    p.add_argument("--top", type=bench.positive_int, default=15, help="rows of the table")
    p.add_argument("--size", type=bench.positive_int, default=128, help="U-Net image size")
    return p.parse_args()


def _functions(cls=autograd.Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _functions(sub)


def time_every_op(totals):
    """Wrap every Function's forward and backward so each call adds its (wall, cpu) seconds to
    ``totals[(direction, name)]``."""
    for cls in set(_functions()):
        for direction in ("forward", "backward"):
            method = cls.__dict__.get(direction)
            if method is None:
                continue
            wrap = classmethod if isinstance(method, classmethod) else staticmethod

            def timed(*args, _fn=method.__func__, _key=(direction, cls.__name__)):
                wall, cpu = time.perf_counter(), time.process_time()
                out = _fn(*args)
                t = totals[_key]
                t[0] += time.perf_counter() - wall
                t[1] += time.process_time() - cpu
                t[2] += 1
                return out

            setattr(cls, direction, wrap(timed))


def main():
    args = parse()
    bench.start_numba_threads(args.threads)
    totals = collections.defaultdict(lambda: [0.0, 0.0, 0])
    time_every_op(totals)
    step = (
        bench_maskrcnn.minidense_step(bench_maskrcnn.render())
        if args.model == "maskrcnn"
        else bench_unet.minidense_step(
            argparse.Namespace(depth=3, base=16), *bench_unet.make_batch(4, args.size)
        )
    )
    for _ in range(WARMUP):
        step()
    totals.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = args.steps
    ops_wall = sum(t[0] for t in totals.values())
    ops_cpu = sum(t[1] for t in totals.values())
    print(f"{args.model} training step, {bench.threads_in_effect()}, mean of {n} steps: "
          f"{1e3 * wall / n:.1f} ms at {cpu / wall:.2f} cores")  # fmt: skip
    print(f"{'op':<34}{'ms/step':>9}{'share':>8}{'cores':>7}{'calls':>7}")
    rows = sorted(totals.items(), key=lambda kv: -kv[1][0])
    for (direction, name), (w, c, k) in rows[: args.top]:
        print(f"{name + ' ' + direction:<34}{1e3 * w / n:>9.2f}{w / wall:>8.1%}"
              f"{c / max(w, 1e-9):>7.2f}{k / n:>7.1f}")  # fmt: skip
    rest = rows[args.top :]
    if rest:
        w, c = sum(t[0] for _, t in rest), sum(t[1] for _, t in rest)
        k = sum(t[2] for _, t in rest)
        print(f"{f'{len(rest)} other ops':<34}{1e3 * w / n:>9.2f}{w / wall:>8.1%}"
              f"{c / max(w, 1e-9):>7.2f}{k / n:>7.1f}")  # fmt: skip
    out_w, out_c = wall - ops_wall, cpu - ops_cpu
    print(f"{'outside the ops':<34}{1e3 * out_w / n:>9.2f}{out_w / wall:>8.1%}"
          f"{out_c / max(out_w, 1e-9):>7.2f}")  # fmt: skip
    print("outside the ops = the step minus its ops: model and loss Python (anchors, matching, "
          "sampling), the autograd engine, the optimizer's loop")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
