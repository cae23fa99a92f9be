"""The benchmark scripts' command lines: thread counts that take effect, arguments checked.

Nothing is timed here: the scripts are started only far enough to parse their arguments.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(args, env=None, code=None):
    full_env = {**os.environ, "NUMBA_NUM_THREADS": "1", **(env or {})}
    full_env.pop("OPENBLAS_NUM_THREADS", None)
    full_env["PYTHONPATH"] = str(BENCH.parent)
    cmd = [sys.executable, *(["-c", code] if code else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)


@pytest.mark.parametrize(
    "script, flag",
    [("bench_dense", "--repeats"), ("bench_roi", "--repeats"), ("bench_unet", "--repeat")],
)
def test_zero_repeats_are_refused(script, flag):
    result = _run([str(BENCH / f"{script}.py"), flag, "0"])
    assert result.returncode == 2, result.stderr
    assert "must be a positive integer" in result.stderr


@pytest.mark.parametrize("script", ["bench_dense", "bench_roi", "bench_unet"])
def test_threads_flag_wins_over_the_environment(script):
    # Import the script as a module with --threads 3 on its command line, as when it is run.
    code = (
        "import os, sys; sys.argv = ['bench', '--threads', '3']; "
        f"sys.path.insert(0, {str(BENCH)!r}); import {script} as b; "
        "print(b.THREADS, os.environ['NUMBA_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'])"
    )
    result = _run([], env={"NUMBA_NUM_THREADS": "1"}, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3", "3"]
    # Without --threads the environment's count is used, BLAS's included.
    code = code.replace("'--threads', '3'", "")
    result = _run([], env={"NUMBA_NUM_THREADS": "1"}, code=code)
    assert result.stdout.split() == ["1", "1", "1"], result.stderr


def test_unet_help_is_a_whole_sentence_and_ratio_explained():
    result = _run([str(BENCH / "bench_unet.py"), "--help"])
    assert result.returncode == 0
    assert "same thread count." in " ".join(result.stdout.split())
    assert "ratio = warm time /" in (BENCH / "bench_unet.py").read_text()


def test_the_shared_module_loads_neither_numpy_nor_numba():
    # The scripts import it before setting the thread counts: it must not start a pool itself.
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import _common; "
        "print(sorted(m for m in ('numpy', 'numba') if m in sys.modules))"
    )
    result = _run([], code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
