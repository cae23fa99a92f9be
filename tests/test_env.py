"""``minidense._env``: the thread settings a fresh process gets when it imports minidense first."""

import os
import subprocess
import sys

SHOW = (
    "import minidense, os, numba; "
    "print(os.environ['NUMBA_THREADING_LAYER'], os.environ['OPENBLAS_THREAD_TIMEOUT'])"
)


def _clean_env(**env):
    """This process's environment without the settings minidense makes, plus ``env``."""
    ours = ("NUMBA_THREADING_LAYER", "OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")
    return {**{k: v for k, v in os.environ.items() if k not in ours}, **env}


def _run(**env):
    out = subprocess.run([sys.executable, "-c", SHOW], env=_clean_env(**env), capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.split()


def test_defaults_keep_numba_and_openblas_from_spinning():
    assert _run() == ["workqueue", "1"]


def test_the_users_own_settings_win():
    assert _run(NUMBA_THREADING_LAYER="omp", OPENBLAS_THREAD_TIMEOUT="4") == ["omp", "4"]


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


def test_numba_imported_before_minidense_still_runs_on_workqueue():
    layers, _ = _layer("import numba")
    assert layers == ["workqueue", "workqueue"]


def test_numba_imported_first_honours_the_users_layer():
    layers, _ = _layer("import numba", NUMBA_THREADING_LAYER="omp")
    assert layers == ["omp", "omp"]


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
    if running != "workqueue":  # OpenMP (or TBB) was available, and numba started it
        assert errs[0].count("already run on its") == 1
        assert "Import minidense first" in errs[0]
