"""Process-wide settings that must be in place before numba is imported."""

import os

# Numba's parallel loops and NumPy's BLAS share two cores on a laptop: use a threading layer that
# needs no external library and does not spin, so the two do not fight over the cores.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
