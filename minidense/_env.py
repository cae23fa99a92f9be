"""Process-wide settings that must be in place before numba (and NumPy's BLAS) are loaded.

They only take effect when minidense is imported first (``python -m minidense`` always does);
settings already in the environment win.
"""

import os

# Numba's parallel loops and NumPy's BLAS share two cores on a laptop: use a threading layer that
# needs no external library and does not spin, so the two do not fight over the cores.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

# OpenBLAS's idle worker threads spin for a long while before they sleep. With two minidense
# processes on two cores (a notebook beside a training run), each one's spinning threads steal the
# other's cores: a U-Net demo step went from 0.1 s to 8.5 s. Sleeping at once costs a single
# process nothing measurable (0.094-0.104 s a step either way) and brings the shared case to 0.43 s.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")
