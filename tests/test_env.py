"""``minidense._env``: the thread settings a fresh process gets when it imports minidense first."""

import ctypes.util
import os
import subprocess
import sys

import pytest

SHOW = (
    "import minidense, os, numba; from numba.core import config; "
    "print(config.THREADING_LAYER, '+'.join(config.THREADING_LAYER_PRIORITY), "
    "os.environ['GOMP_SPINCOUNT'], os.environ['OPENBLAS_THREAD_TIMEOUT'])"
)


def _clean_env(**env):
    """This process's environment without the settings minidense makes, plus ``env``."""
    ours = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "GOMP_SPINCOUNT",
            "OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")  # fmt: skip
    return {**{k: v for k, v in os.environ.items() if k not in ours}, **env}


def _run(**env):
    out = subprocess.run([sys.executable, "-c", SHOW], env=_clean_env(**env), capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.split()


def _expected_layer():
    """OpenMP where numba can load its pool here, else workqueue (minidense's priority)."""
    try:
        from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        return "workqueue"
    return "omp"


def test_defaults_prefer_openmp_spinning_briefly_and_keep_openblas_from_spinning():
    assert _run() == ["default", "omp+workqueue+tbb", "10000", "1"]


def test_an_openmp_runtime_loaded_first_puts_workqueue_first():
    # PyTorch imported before minidense brings its own OpenMP runtime, which has read its (long)
    # spinning already; numba's OpenMP layer would run on it. A loaded libgomp stands in for it.
    libgomp = ctypes.util.find_library("gomp")
    if libgomp is None:
        pytest.skip("no libgomp on this machine to load before minidense")
    code = f"import ctypes; ctypes.CDLL({libgomp!r}, mode=ctypes.RTLD_GLOBAL); " + SHOW
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["default", "workqueue+omp+tbb", "10000", "1"]
    # With the user's own GOMP_SPINCOUNT the loaded runtime spins as they chose: OpenMP first.
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(GOMP_SPINCOUNT="100"),
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["default", "omp+workqueue+tbb", "100", "1"]
    layers, _ = _layer(f"import ctypes; ctypes.CDLL({libgomp!r}, mode=ctypes.RTLD_GLOBAL)")
    assert layers == ["workqueue", "workqueue"]


def test_the_users_own_settings_win():
    got = _run(NUMBA_THREADING_LAYER="workqueue", GOMP_SPINCOUNT="5", OPENBLAS_THREAD_TIMEOUT="4")
    assert got == ["workqueue", "omp+workqueue+tbb", "5", "4"]


# A parallel kernel of minidense runs; numba reports the layer its threads were started on. The
# script runs twice: the second run loads the kernel from numba's disk cache without compiling
# it, the case where numba never re-read the environment and fell back to OpenMP.
LAYER_AFTER = """
import sys
{first}
import numpy as np
import minidense as md, numba
md.F.max_pool2d(md.tensor(np.ones((1, 2, 4, 4), np.float32)), 2)
print(numba.threading_layer())
"""


def _layer(first, **env):
    script = LAYER_AFTER.format(first=first)
    runs = [subprocess.run([sys.executable, "-c", script], env=_clean_env(**env),
                           capture_output=True, text=True, check=True) for _ in range(2)]  # fmt: skip
    return [r.stdout.split()[-1] for r in runs], [r.stderr for r in runs]


def test_fresh_process_runs_on_the_preferred_layer():
    layers, errs = _layer("")
    assert layers == [_expected_layer()] * 2 and "already run" not in errs[0]


def test_numba_imported_before_minidense_still_runs_on_the_preferred_layer():
    layers, _ = _layer("import numba")
    assert layers == [_expected_layer()] * 2


def test_numba_imported_first_honours_the_users_layer():
    layers, _ = _layer("import numba", NUMBA_THREADING_LAYER="workqueue")
    assert layers == ["workqueue", "workqueue"]


def test_a_layer_already_running_is_reported_once():
    started = (
        "import numba, numpy\n"
        "@numba.njit(parallel=True)\n"
        "def f(a):\n"
        "    for i in numba.prange(a.size):\n"
        "        a[i] += 1\n"
        "f(numpy.zeros(4))\n"
        "print(numba.threading_layer(), file=sys.stderr)\n"
    )
    layers, errs = _layer(started)
    running = errs[0].split()[0]
    assert layers[0] == running  # numba cannot switch a running layer
    assert errs[0].count("already run on its") == 1
    assert "Import minidense first" in errs[0]
    # Naming the running layer is the user's choice: then nothing is said.
    layers, errs = _layer(started, NUMBA_THREADING_LAYER=running)
    assert layers[0] == running and "already run on its" not in errs[0]


def test_malloc_keeps_activation_pages_on_glibc_unless_the_user_tuned_it():
    from minidense import _env

    if not sys.platform.startswith("linux"):
        assert not _env.MALLOC_TUNED
        return
    assert _env.MALLOC_TUNED == _env.tune_malloc({})  # glibc here: set at import, and settable
    assert _env.tune_malloc({"MALLOC_MMAP_THRESHOLD_": "65536"}) is False
    assert _env.tune_malloc({"MALLOC_TRIM_THRESHOLD_": "0"}) is False


NUMPY_FIRST = """
import ctypes, numpy
paths = sorted({l.split()[-1] for l in open("/proc/self/maps") if "openblas" in l.lower()})
lib = ctypes.CDLL(paths[0])
before = lib.openblas_thread_timeout()
import minidense
print(before, lib.openblas_thread_timeout(), float(numpy.ones((64, 64)) @ numpy.ones(64) @ numpy.ones(64)))
"""


def test_openblas_loaded_by_numpy_first_takes_the_timeout_too():
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/maps, which only Linux has")
    probe = subprocess.run([sys.executable, "-c", "import numpy; print(any('openblas' in l.lower() "
                            "for l in open('/proc/self/maps')))"], capture_output=True, text=True)  # fmt: skip
    if probe.stdout.strip() != "True":
        pytest.skip("this NumPy does not use OpenBLAS")
    out = subprocess.run([sys.executable, "-c", NUMPY_FIRST], env=_clean_env(), capture_output=True,
                         text=True, check=True)  # fmt: skip
    before, after, dot = out.stdout.split()
    assert (before, after, dot) == ("0", "1", "4096.0")  # re-read, and BLAS still works after
    out = subprocess.run([sys.executable, "-c", NUMPY_FIRST], capture_output=True, text=True,
                         env=_clean_env(OPENBLAS_THREAD_TIMEOUT="4"), check=True)  # fmt: skip
    assert out.stdout.split()[:2] == ["4", "4"]  # the user's own setting is left alone
