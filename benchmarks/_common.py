"""What the benchmark scripts share: thread counts set early, and argparse helpers.

The scripts are run as ``python benchmarks/bench_x.py``, so this folder is on ``sys.path`` and
``from _common import ...`` works. This module imports only the standard library: a script
imports it and calls :func:`early_threads` *before* it imports NumPy or Numba, whose thread pools
read NUMBA_NUM_THREADS / OPENBLAS_NUM_THREADS once, when they start.
"""

import argparse
import json
import os
import sys

# The OpenMP settings as the user left them, read before minidense is imported: minidense makes
# numba's OpenMP threads spin only briefly (GOMP_SPINCOUNT), and PyTorch's OpenMP reads the same
# variables when torch is imported; see import_torch.
OPENMP_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
USER_OPENMP = {name: os.environ.get(name) for name in OPENMP_SETTINGS}


def early_threads(default=2):
    """Set the thread count of Numba's pool and NumPy's BLAS before either starts its pool.

    ``--threads N`` on the command line wins over NUMBA_NUM_THREADS / OPENBLAS_NUM_THREADS from
    the environment, which win over ``default``. Returns the count to use (PyTorch's too).
    """
    for i, arg in enumerate(sys.argv):
        value = sys.argv[i + 1] if arg == "--threads" and i + 1 < len(sys.argv) else None
        if arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit() and int(value) > 0:  # else argparse complains
            os.environ["NUMBA_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = value
            return int(value)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(default))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["NUMBA_NUM_THREADS"])
    value = os.environ["NUMBA_NUM_THREADS"]
    return int(value) if value.isdigit() and int(value) > 0 else default


def positive_int(text):
    """argparse type: an int >= 1 (0 repeats would leave nothing to take the median of)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_threads_argument(parser, default, help="Numba, OpenBLAS and PyTorch alike"):
    """``--threads N`` (a positive int; ``default`` is what :func:`early_threads` returned)."""
    parser.add_argument("--threads", type=positive_int, default=default, help=help)


def start_numba_threads(n):
    """Start numba's thread pool with ``n`` threads (at most the pool's size). Call it after
    importing minidense, which chooses the threading layer the pool starts on."""
    import numba  # here, not at the top: this module is imported before the thread counts are set

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def _set_env(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def import_torch(threads, *also):
    """PyTorch with ``threads`` threads and its own OpenMP settings, or None when it (or one of
    the modules named in ``also``, e.g. "torchvision") is not importable.

    minidense, imported first, sets OpenMP's spinning for numba's threads (GOMP_SPINCOUNT; it
    used to set OMP_WAIT_POLICY=PASSIVE), and torch's OpenMP reads the same variables once, when
    torch is imported. With PASSIVE its threads slept after every parallel loop: the torch Mask
    R-CNN step took 156 ms instead of 74 ms (bench_maskrcnn, 2 threads). That is not PyTorch as
    its users run it, so torch is imported with the user's settings, and minidense's are put
    back afterwards. Numba's threads are started first: started after torch, numba's OpenMP
    layer ran on torch's OpenMP runtime and its settings (a U-Net step 0.25 -> 0.35 s).
    """
    start_numba_threads(threads)
    ours = {name: os.environ.get(name) for name in OPENMP_SETTINGS}
    for name, value in USER_OPENMP.items():
        _set_env(name, value)
    try:
        import torch  # here, not at the top: after minidense, with the user's wait policy

        for name in also:
            __import__(name)
    except ImportError:
        return None
    finally:
        for name, value in ours.items():
            _set_env(name, value)
    torch.set_num_threads(threads)
    return torch


def threads_in_effect(torch=None):
    """``numba threads=N BLAS threads=M[ torch threads=K]``: the counts the run really uses."""
    import numba

    try:  # the layer decides speed (OpenMP's threads spin against BLAS): print what runs
        layer = numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        layer = "not started"
    text = (
        f"numba threads={numba.get_num_threads()} layer={layer} "
        f"BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    return text + (f" torch threads={torch.get_num_threads()}" if torch is not None else "")


def add_json_argument(parser):
    """``--json FILE``: also write the medians as JSON (what ``benchmarks/record.py`` reads)."""
    parser.add_argument("--json", metavar="FILE",
                        help="also write each op's median milliseconds per implementation as JSON")  # fmt: skip


def write_json(path, bench, ops, threads):
    """``ops``: ``{op: {implementation: median ms}}``, minidense's among them."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"bench": bench, "threads": threads, "ops": ops}, f, indent=1)
