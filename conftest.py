"""Test-session set-up that must run before numba is imported anywhere.

By default the CUDA kernels are tested under Numba's CUDA simulator, so every CI run checks them
against the CPU kernels without a GPU. Set ``MINIDENSE_TEST_GPU=1`` to run the same tests on a
real NVIDIA GPU instead (the simulator is then left off and the ``gpu``-marked tests run too).
"""

import os

if os.environ.get("MINIDENSE_TEST_GPU", "0") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MINIDENSE_FAST", "1")
# One BLAS thread in tests (and in the notebook kernels, which inherit this environment): Numba's
# prange already uses the cores, and OpenBLAS's spinning workers collapse (10-50x slower) as soon
# as anything else loads a 2-core machine. Set before numpy is imported, or it has no effect.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# The CUDA simulator runs one Python thread per CUDA thread and meets at every barrier; Python
# switches threads only every 5 ms by default, which makes barrier-heavy kernels (the tiled
# matmul) crawl. 1 ms is several times faster and changes nothing else.
import sys  # noqa: E402

sys.setswitchinterval(0.001)

# Under the simulator every kernel launch of the session is recorded (kernel and argument types):
# tests/test_check_cuda.py, which runs last, compiles them all for real GPUs and checks that the
# tests launch every kernel, in every float dtype the library uses.
import contextlib  # noqa: E402
from pathlib import Path  # noqa: E402

from minidense.cudacheck import record  # noqa: E402

_RECORDING = contextlib.ExitStack()


def pytest_configure(config):
    config.cuda_launches = None
    config.cuda_deselected = False
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        config.cuda_launches = _RECORDING.enter_context(record.recording())


def pytest_unconfigure(config):
    _RECORDING.close()


def pytest_deselected(items):
    if items:
        items[0].config.cuda_deselected = True


def pytest_collection_modifyitems(session, config, items):
    # Tests marked run_last see the launches of every other test (a stable sort keeps the order).
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


def pytest_collection_finish(session):
    # Whether every test file was collected and nothing deselected: only then can a test claim
    # what "the tests" launch.
    wanted = set((Path(__file__).parent / "tests").glob("test_*.py"))
    collected = {Path(item.path) for item in session.items}
    session.config.cuda_whole_suite = not session.config.cuda_deselected and wanted <= collected
