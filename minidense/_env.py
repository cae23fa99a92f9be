"""Process-wide settings for numba's threads, NumPy's BLAS and glibc's malloc, made whatever was
imported first.

Settings already in the environment win. If numba was imported before minidense (a notebook that
imports numba first, a benchmark), its configuration is brought in line here too, because a
kernel loaded from numba's disk cache is never compiled, and only compiling re-reads the
environment: without this, such a process silently ran on the slow layer (below).
"""

import ctypes
import os
import sys
import warnings

# Numba's parallel loops and NumPy's BLAS share two cores on a laptop, and a training step starts
# 100-200 parallel loops (im2col, batch norm, an Adam update per parameter...). Numba's OpenMP
# layer starts one in about 2 µs; its workqueue layer, whose threads sleep between loops, in about
# 120 µs. But OpenMP's idle threads spin, by default for 300,000 rounds, on the cores BLAS needs
# next (a U-Net step took 0.95 s instead of 0.34 s). So: OpenMP where numba finds it, spinning
# only briefly (GOMP_SPINCOUNT), else workqueue. Measured on 2 cores, 2 threads: a Mask R-CNN
# training step 142-147 -> 115-118 ms, a U-Net step 0.29-0.35 -> 0.24-0.27 s. A layer the user
# names in NUMBA_THREADING_LAYER wins, as do their own OMP_WAIT_POLICY and GOMP_SPINCOUNT.
LAYER_PRIORITY = "omp workqueue tbb"
# An OpenMP runtime loaded before minidense (PyTorch's, when torch is imported first) has read its
# settings already, and numba's OpenMP layer runs on it: with its default spinning a U-Net step
# took 0.82 s instead of 0.25 s. There, workqueue first.
FALLBACK_PRIORITY = "workqueue omp tbb"


def mapped_libraries(*names):
    """Paths of the shared libraries mapped into this process whose path contains one of
    ``names`` (case-insensitive); empty where ``/proc/self/maps`` cannot be read (not Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if any(n in p.lower() for n in names))


def openmp_already_loaded():
    """Whether an OpenMP runtime is already mapped into this process (read on Linux only)."""
    return bool(mapped_libraries("libgomp", "libiomp", "libomp"))


if "GOMP_SPINCOUNT" not in os.environ and openmp_already_loaded():
    os.environ.setdefault("NUMBA_THREADING_LAYER_PRIORITY", FALLBACK_PRIORITY)
os.environ.setdefault("NUMBA_THREADING_LAYER_PRIORITY", LAYER_PRIORITY)
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# OpenBLAS's idle worker threads spin for a long while before they sleep. With two minidense
# processes on two cores (a notebook beside a training run), each one's spinning threads steal the
# other's cores: a U-Net demo step went from 0.1 s to 8.5 s. Sleeping at once costs a single
# process nothing measurable (0.094-0.104 s a step either way) and brings the shared case to 0.43 s.
# (OpenBLAS reads this when NumPy loads it: a NumPy imported before minidense keeps its default.)
_USERS_OPENBLAS_TIMEOUT = "OPENBLAS_THREAD_TIMEOUT" in os.environ
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")


def openblas_reread_env():
    """Make an OpenBLAS that NumPy loaded before minidense take the timeout set above: OpenBLAS
    reads its environment when it loads, and its threads take the timeout when they start. So it
    re-reads the environment and stops its threads (the next BLAS call starts them again), as
    OpenBLAS does around a fork. Imported after matplotlib (and so NumPy), a small U-Net step
    took 118 ms instead of 74 ms: the idle BLAS threads spun against numba's. Returns the
    libraries told so (Linux; none elsewhere)."""
    told = []
    for path in mapped_libraries("openblas"):
        try:
            lib = ctypes.CDLL(path)
            read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
        except (OSError, AttributeError):
            continue  # not an OpenBLAS with these entry points: leave it as it is
        read_env()
        shutdown()
        told.append(path)
    return told


if "numpy" in sys.modules and not _USERS_OPENBLAS_TIMEOUT:
    openblas_reread_env()


# Every op returns fresh arrays of up to tens of MB. glibc's malloc serves those above its mmap
# threshold (dynamic, from 128 kB) with fresh pages, and trims the heap's top past 128 kB: the
# pages of a step's activations are then faulted in anew every step. Keeping up to 256 MB at the
# heap's top and serving arrays under 32 MB from the heap made a U-Net step 5-10% faster
# (0.22-0.24 -> 0.20-0.21 s) at the same peak memory. glibc's own MALLOC_*_ settings win.
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 256 << 20


def tune_malloc(environ=os.environ):
    """Raise glibc malloc's mmap and trim thresholds (above), unless the user set either; returns
    whether they were set (False off glibc)."""
    if any(k in environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt  # glibc (and some others); AttributeError elsewhere
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)) and bool(
        mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD)
    )


MALLOC_TUNED = sys.platform.startswith("linux") and tune_malloc()


def configure_loaded_numba():
    """Point an already imported numba at the chosen layers before its threads start; if they
    already run (a parallel function ran before minidense was imported), say so once, unless the
    user chose that layer: numba cannot switch layers in a running process, and OpenMP's threads
    then spin as long as its defaults say. Returns the layer setting numba will use ("default":
    the first available of ``NUMBA_THREADING_LAYER_PRIORITY``), the running layer, or None when
    numba is not loaded yet."""
    config = sys.modules.get("numba.core.config")
    if config is None:
        return None  # numba will read the environment set above when it is imported
    users = os.environ.get("NUMBA_THREADING_LAYER")
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not parallel._is_initialized:
        config.THREADING_LAYER = users or "default"
        config.THREADING_LAYER_PRIORITY = os.environ["NUMBA_THREADING_LAYER_PRIORITY"].split()
        return config.THREADING_LAYER
    running = parallel.threading_layer()
    if users in (running, "default", "safe", "forksafe", "threadsafe"):
        return running
    warnings.warn(
        f"numba's parallel threads already run on its {running!r} layer (a parallel function ran "
        f"before minidense was imported), not set up by minidense: its kernels and NumPy's BLAS "
        f"may compete for the cores and train more slowly. Import minidense first, or set "
        f"NUMBA_THREADING_LAYER={running} before starting Python to keep this layer.",
        RuntimeWarning,
        stacklevel=3,
    )
    return running


configure_loaded_numba()
