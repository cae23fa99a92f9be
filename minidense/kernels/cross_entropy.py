"""Softmax cross-entropy over rows of ``(M, C)`` logits, fused per row (CPU).

With NumPy, the log-softmax of a segmentation batch is a max, a subtraction, an exp, a sum and a
log along an axis of a few classes (4 for the U-Net), each a pass whose per-row overhead dwarfs
its arithmetic: 6 ms for a 4×4×128×128 batch. Here one ``prange`` iteration handles a row::

    forward:   lsm[i] = x[i] − max(x[i]) − log Σ_c exp(x[i, c] − max(x[i]))
    backward:  grad[i, c] = (exp(lsm[i, c]) − [c = t[i]]) · coef[i]

The sum runs in float64. A NaN anywhere in a row makes the row's max, and so its log-softmax,
NaN, as NumPy's ``max`` does. Device arrays keep the array ops of ``minidense.ops.loss``, which
are also the kernels' reference in the tests.
"""

import math

import numpy as np
from numba import prange

from ._targets import cpu_kernel

__all__ = ["log_softmax_rows", "cross_entropy_grad_rows"]


@cpu_kernel
def _log_softmax_rows_cpu(x, out):
    M, C = x.shape
    for i in prange(M):
        m = x[i, 0]
        for c in range(1, C):
            v = x[i, c]
            if v > m or v != v:  # keeps a NaN once it is the max (NaN compares false)
                if m == m:
                    m = v
        s = 0.0
        for c in range(C):
            s += math.exp(x[i, c] - m)
        lse = math.log(s)
        for c in range(C):
            out[i, c] = (x[i, c] - m) - lse


@cpu_kernel
def _cross_entropy_grad_rows_cpu(lsm, target, coef, out):
    M, C = lsm.shape
    for i in prange(M):
        t, k = target[i], coef[i]
        for c in range(C):
            p = math.exp(lsm[i, c])
            out[i, c] = ((p - 1) if c == t else p) * k


def log_softmax_rows(x):
    """``x (M, C)`` float, host -> its log-softmax along axis 1 (C >= 1), in x's dtype."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if x.size:
        _log_softmax_rows_cpu(x, out)
    return out


def cross_entropy_grad_rows(lsm, target, coef):
    """``lsm (M, C)``, ``target (M,)`` int64 class indices, ``coef (M,)`` -> ``(M, C)``:
    (softmax − one-hot(target)) · coef, in lsm's dtype."""
    out = np.empty_like(lsm)
    if lsm.size:
        _cross_entropy_grad_rows_cpu(
            np.ascontiguousarray(lsm), np.ascontiguousarray(target, dtype=np.int64),
            np.ascontiguousarray(coef, dtype=lsm.dtype), out,
        )  # fmt: skip
    return out
