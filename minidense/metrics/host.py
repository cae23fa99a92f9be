"""The metrics take NumPy arrays, minidense Tensors and device arrays alike: ``host_array``."""

import numpy as np

__all__ = ["host_array"]


def host_array(x, name=None):
    """``x`` as a NumPy array: arrays as they are; minidense Tensors (anything with ``.numpy()``)
    and Numba device arrays (``copy_to_host``) copied to the host first. With a ``name``, data
    NumPy cannot read (e.g. a ragged list) is a TypeError naming the argument."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    if name is None:
        return np.asarray(x)
    try:
        return np.asarray(x)
    except Exception as e:  # e.g. ragged lists
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from e
