"""Adam's and AdamW's update of one parameter, fused: one pass over its elements, in parallel.

The optimizer's NumPy version walks each parameter about ten times (``m *= b1``, ``m += ...``,
a temporary per operation) on one core: 12% of a Mask R-CNN training step. Here each element's
update is written once, the same operations in the same order, so the result is the NumPy
version's to the last bit on the CPU.
"""

import math

import numpy as np
from numba import cuda, prange

from ._targets import cpu_kernel, dual, is_device_array, launch


def adam_element(p, g, m, v, i, hyper):
    """Update element ``i`` of the flat arrays ``p`` (parameter), ``m`` and ``v`` (the moving
    averages) from the gradient ``g``. ``hyper`` (see :func:`adam_update`), in the parameter's
    dtype: ``lr, b1, b2, 1 − b1, 1 − b2, eps, weight_decay, 1 − lr·weight_decay, 1 − b1**t,
    1 − b2**t, decay`` with decay 0 (none), 1 (Adam: added to the gradient) or 2 (AdamW: the
    weights shrink directly)."""
    lr, b1, b2, c1, c2, eps, wd, shrink, bias1, bias2, decay = hyper
    gi = g[i]
    if decay == 1:
        gi = gi + wd * p[i]
    mi = m[i] * b1
    mi = mi + c1 * gi
    vi = v[i] * b2
    vi = vi + c2 * gi * gi
    m[i] = mi
    v[i] = vi
    pi = p[i]
    if decay == 2:
        pi = pi * shrink
    step = (mi / bias1) / (math.sqrt(vi / bias2) + eps)
    p[i] = pi - step * lr


adam_element_cpu, adam_element_cuda = dual(adam_element)


@cpu_kernel
def _adam_cpu(p, g, m, v, hyper):
    for i in prange(p.size):
        adam_element_cpu(p, g, m, v, i, hyper)


@cuda.jit
def _adam_cuda(p, g, m, v, hyper):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, p.size, stride):
        adam_element_cuda(p, g, m, v, i, hyper)


def adam_update(p, g, m, v, lr, betas, eps, weight_decay, step, decoupled):
    """Update ``p``, ``m`` and ``v`` in place (flat, contiguous, one dtype, one device: the
    optimizer checked it). ``step`` is the step count t >= 1 after this step."""
    T = p.dtype.type
    b1, b2 = betas
    # Every constant as the NumPy version computes it: in Python floats, then in the dtype.
    decay = 0 if not weight_decay else (2 if decoupled else 1)
    hyper = (T(lr), T(b1), T(b2), T(1 - b1), T(1 - b2), T(eps), T(weight_decay),
             T(1 - lr * weight_decay), T(1 - b1**step), T(1 - b2**step), np.int64(decay))  # fmt: skip
    if is_device_array(p):
        _adam_cuda[launch(p.size)](p, g, m, v, hyper)
    else:
        _adam_cpu(p, g, m, v, hyper)
