"""``minidense._env``: the thread settings a fresh process gets when it imports minidense first."""

import os
import subprocess
import sys

SHOW = (
    "import minidense, os, numba; "
    "print(os.environ['NUMBA_THREADING_LAYER'], os.environ['OPENBLAS_THREAD_TIMEOUT'])"
)


def _run(**env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("NUMBA_THREADING_LAYER", "OPENBLAS_THREAD_TIMEOUT")}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.split()


def test_defaults_keep_numba_and_openblas_from_spinning():
    assert _run() == ["workqueue", "1"]


def test_the_users_own_settings_win():
    assert _run(NUMBA_THREADING_LAYER="omp", OPENBLAS_THREAD_TIMEOUT="4") == ["omp", "4"]
