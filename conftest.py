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
