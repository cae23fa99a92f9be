"""Benchmark: the dense kernels (conv2d, max_pool2d + max_unpool2d, bilinear x2), fwd + bwd.

Three implementations of the same computation on the same float32 inputs, in one process:

- minidense (our Numba kernels + BLAS, through autograd);
- a plain NumPy baseline (stride-trick im2col + einsum for conv2d, reshape + argmax for the
  2x2 pooling, two interpolation matrices for bilinear);
- PyTorch on the CPU with ``torch.set_num_threads(2)``, when torch is importable.

Warm times interleave the three implementations (one call each, round robin) so that a noisy
neighbour on a shared machine slows them alike; the table shows the median and the minimum.
The first call of each implementation is reported apart (for minidense it includes loading or
compiling the Numba kernels; pass ``--cold`` to compile from scratch in a fresh cache).

    python benchmarks/bench_dense.py [--repeats 15] [--cold]
        [--threads 2]   (Numba, OpenBLAS and PyTorch threads alike; 1 is steadier on a busy machine)
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import _common as bench

if "--cold" in sys.argv:  # must happen before numba is imported
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="minidense-bench-cache-")
# The same number of threads for everyone: Numba's pool, NumPy's BLAS and PyTorch.
THREADS = bench.early_threads()

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

from minidense.ops.conv import conv2d  # noqa: E402
from minidense.ops.pool import max_pool2d, max_unpool2d  # noqa: E402
from minidense.ops.upsample import interpolate  # noqa: E402
from minidense.tensor import Tensor  # noqa: E402

# None where torch is not installed: the benchmark still compares against NumPy. Imported with
# PyTorch's own OpenMP settings, not the ones minidense sets (_common.import_torch).
torch = bench.import_torch(THREADS)
TF = torch.nn.functional if torch is not None else None


# ----------------------------------------------------------------------------- inputs


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {
        "conv": dict(
            x=rng.standard_normal((8, 32, 64, 64)).astype(f32),
            w=(rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(f32),
            b=rng.standard_normal(32).astype(f32),
            g=rng.standard_normal((8, 32, 64, 64)).astype(f32),
        ),
        "pool": dict(
            x=rng.standard_normal((8, 32, 64, 64)).astype(f32),
            g=rng.standard_normal((8, 32, 64, 64)).astype(f32),
        ),
        "bilinear": dict(
            x=rng.standard_normal((8, 32, 32, 32)).astype(f32),
            g=rng.standard_normal((8, 32, 64, 64)).astype(f32),
        ),
    }


# ----------------------------------------------------------------------------- minidense


def ours_conv(x, w, b, g):
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    conv2d(xt, wt, bt, padding=1).backward(g)
    return xt.grad.data, wt.grad.data, bt.grad.data


def ours_pool(x, g):
    xt = Tensor(x, requires_grad=True)
    y, idx = max_pool2d(xt, 2, return_indices=True)
    max_unpool2d(y, idx, 2).backward(g)
    return xt.grad.data


def ours_bilinear(x, g):
    xt = Tensor(x, requires_grad=True)
    interpolate(xt, scale_factor=2, mode="bilinear", align_corners=False).backward(g)
    return xt.grad.data


# ----------------------------------------------------------------------------- NumPy baseline


def numpy_conv(x, w, b, g):
    """3x3, padding 1, stride 1: im2col as a strided view, contractions by einsum."""
    H, W = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3), no copy
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]
    gw = np.einsum("nchwij,nohw->ocij", win, g, optimize=True)
    gb = g.sum(axis=(0, 2, 3))
    gxp = np.zeros_like(xp)
    for i in range(3):
        for j in range(3):
            gxp[:, :, i : i + H, j : j + W] += np.einsum("nohw,oc->nchw", g, w[:, :, i, j])
    return y, gxp[:, :, 1:-1, 1:-1], gw, gb


def numpy_pool(x, g):
    """2x2 max pool (first maximum wins, like argmax) + unpool, forward and backward."""
    N, C, H, W = x.shape
    win = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, -1, 4)
    arg = win.argmax(axis=-1)[..., None]
    y = np.take_along_axis(win, arg, axis=-1)
    unpooled = np.zeros_like(win)
    np.put_along_axis(unpooled, arg, y, axis=-1)
    # backward: unpool gathers at the maxima, the pool scatters back to them
    gwin = g.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, -1, 4)
    gx = np.zeros_like(win)
    np.put_along_axis(gx, arg, np.take_along_axis(gwin, arg, axis=-1), axis=-1)
    gx = gx.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)
    return unpooled, gx


def _interp_matrix(n_in, n_out, dtype):
    """(n_out, n_in) bilinear weights, align_corners=False, scale 2."""
    a = np.zeros((n_out, n_in), dtype=dtype)
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    np.add.at(a, (np.arange(n_out), i0), 1 - lam)
    np.add.at(a, (np.arange(n_out), i1), lam)
    return a


def numpy_bilinear(x, g):
    """y = Ah · x · Awᵀ per plane; grad_x = Ahᵀ · g · Aw (BLAS does the work)."""
    H, W = x.shape[2:]
    ah, aw = _interp_matrix(H, 2 * H, x.dtype), _interp_matrix(W, 2 * W, x.dtype)
    y = ah @ x @ aw.T
    return y, ah.T @ g @ aw


# ----------------------------------------------------------------------------- PyTorch


def torch_conv(x, w, b, g):
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    TF.conv2d(xt, wt, bt, padding=1).backward(torch.from_numpy(g))
    return xt.grad, wt.grad, bt.grad


def torch_pool(x, g):
    xt = torch.from_numpy(x).requires_grad_()
    y, idx = TF.max_pool2d(xt, 2, return_indices=True)
    TF.max_unpool2d(y, idx, 2).backward(torch.from_numpy(g))
    return xt.grad


def torch_bilinear(x, g):
    xt = torch.from_numpy(x).requires_grad_()
    TF.interpolate(xt, scale_factor=2, mode="bilinear", align_corners=False).backward(
        torch.from_numpy(g)
    )
    return xt.grad


# ----------------------------------------------------------------------------- driver

CASES = [
    ("conv2d 8x32x64x64 -> 32, 3x3 pad 1", "conv", ours_conv, numpy_conv, "torch_conv"),
    ("max_pool2d 2x2 + max_unpool2d 8x32x64x64", "pool", ours_pool, numpy_pool, "torch_pool"),
    ("bilinear x2 8x32x32x32", "bilinear", ours_bilinear, numpy_bilinear, "torch_bilinear"),
]


def check_agreement(ours_out, torch_out, name):
    """Guard against benchmarking wrong code: the input gradients must agree with PyTorch."""
    a = ours_out[0] if isinstance(ours_out, tuple) else ours_out
    t = (torch_out[0] if isinstance(torch_out, tuple) else torch_out).numpy()
    err = float(np.abs(a - t).max() / (np.abs(t).max() + 1e-12))
    if err > 1e-4:
        raise AssertionError(f"{name}: minidense and PyTorch disagree (relative error {err:.2e})")


BLOCKS = 3  # blocks of warm runs per implementation
PAUSE_S = 0.5  # longer than OpenBLAS's and libgomp's spin-wait


def run(repeats):
    inputs = make_inputs()
    rows = []
    for name, key, ours, base, torch_name in CASES:
        args = inputs[key].values()
        impls = {"minidense": ours, "numpy": base}
        if torch is not None:
            impls["torch"] = globals()[torch_name]
        first, outs = {}, {}
        for label, fn in impls.items():
            t0 = time.perf_counter()
            outs[label] = fn(*args)
            first[label] = time.perf_counter() - t0
        if torch is not None:
            check_agreement(outs["minidense"], outs["torch"], name)
        warm = {label: [] for label in impls}
        # Blocks of runs per implementation, the blocks in round robin so background load hits
        # all alike. A pause before each block lets the previous library's worker threads (BLAS,
        # OpenMP) stop spin-waiting: they would otherwise steal the cores of the next one. The
        # first call after the pause is not timed, for any library: it pays for cold caches and
        # sleeping cores (2-3x a warm call here), which a training loop meets once, not per op.
        for block in range(BLOCKS):
            for label, fn in impls.items():
                time.sleep(PAUSE_S)
                fn(*args)
                for _ in range(repeats // BLOCKS + (block < repeats % BLOCKS)):
                    t0 = time.perf_counter()
                    fn(*args)
                    warm[label].append(time.perf_counter() - t0)
        rows.append((name, first, warm))
    return rows


def print_table(rows):
    ms = 1e3
    print(
        f"{'op (forward + backward)':42s} {'impl':10s} {'first ms':>9s} {'median ms':>10s} "
        f"{'min ms':>8s} {'ours/this':>10s}"
    )
    for name, first, warm in rows:
        ours_med = statistics.median(warm["minidense"])
        for label in warm:
            med, low = statistics.median(warm[label]), min(warm[label])
            ratio = "" if label == "minidense" else f"{ours_med / med:9.2f}x"
            print(
                f"{name:42s} {label:10s} {first[label] * ms:9.1f} {med * ms:10.2f} "
                f"{low * ms:8.2f} {ratio:>10s}"
            )
            name = ""
    print("ours/this = minidense median / this implementation's median (< 1: minidense faster)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=bench.positive_int, default=15)
    bench.add_threads_argument(parser, THREADS, help="threads for all three")
    parser.add_argument("--cold", action="store_true", help="compile Numba kernels from scratch")
    bench.add_json_argument(parser)
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    import numba

    print(
        f"numba {numba.__version__} threads={numba.get_num_threads()} "
        f"BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS')} "
        f"layer={os.environ.get('NUMBA_THREADING_LAYER', 'default')}, numpy {np.__version__}, "
        + (f"torch {torch.__version__} threads={torch.get_num_threads()}" if torch else "no torch")
        + (", cold Numba cache" if args.cold else "")
    )
    rows = run(args.repeats)
    print_table(rows)
    ops = {name: {label: 1e3 * statistics.median(times) for label, times in warm.items()}
           for name, _, warm in rows}  # fmt: skip
    bench.write_json(args.json, "dense", ops, bench.threads_in_effect(torch))


if __name__ == "__main__":
    main()
