"""Process-wide settings for numba's threads and NumPy's BLAS, made whatever was imported first.

Settings already in the environment win. If numba was imported before minidense (a notebook that
imports numba first, a benchmark), its configuration is brought in line here too, because a
kernel loaded from numba's disk cache is never compiled, and only compiling re-reads the
environment: without this, such a process silently ran on the slow layer (below).
"""

import os
import sys
import warnings

# Numba's parallel loops and NumPy's BLAS share two cores on a laptop: use a threading layer that
# needs no external library and does not spin, so the two do not fight over the cores. The
# OpenMP layer, numba's default when it finds no TBB, keeps its threads spinning between loops:
# a U-Net training step (4x3x128x128) took 0.95 s on it against 0.34 s on workqueue.
WANTED_LAYER = "workqueue"
os.environ.setdefault("NUMBA_THREADING_LAYER", WANTED_LAYER)
# If OpenMP runs anyway (chosen by the user, or picked by numba before we could choose), its
# threads should sleep when idle instead of spinning against BLAS.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# OpenBLAS's idle worker threads spin for a long while before they sleep. With two minidense
# processes on two cores (a notebook beside a training run), each one's spinning threads steal the
# other's cores: a U-Net demo step went from 0.1 s to 8.5 s. Sleeping at once costs a single
# process nothing measurable (0.094-0.104 s a step either way) and brings the shared case to 0.43 s.
# (OpenBLAS reads this when NumPy loads it: a NumPy imported before minidense keeps its default.)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")


def configure_loaded_numba():
    """Point an already imported numba at the chosen layer before its threads start; if they
    already run on another layer, say so once (numba cannot switch layers in a running
    process). Returns the layer numba will use, or None when numba is not loaded yet."""
    config = sys.modules.get("numba.core.config")
    if config is None:
        return None  # numba will read the environment set above when it is imported
    chosen = os.environ["NUMBA_THREADING_LAYER"]
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not parallel._is_initialized:
        config.THREADING_LAYER = chosen
        return chosen
    running = parallel.threading_layer()
    if chosen in (running, "default", "safe", "forksafe", "threadsafe"):
        return running
    warnings.warn(
        f"numba's parallel threads already run on its {running!r} layer (a parallel function ran "
        f"before minidense was imported), not {chosen!r}: minidense's kernels and NumPy's BLAS "
        f"will compete for the cores and train more slowly. Import minidense first, or set "
        f"NUMBA_THREADING_LAYER={chosen} before starting Python.",
        RuntimeWarning,
        stacklevel=3,
    )
    return running


configure_loaded_numba()
