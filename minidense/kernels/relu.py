"""ReLU's forward and backward as parallel CPU kernels for large float arrays.

NumPy's ReLU is two passes forward (the mask ``x > 0``, then ``maximum``) and one backward, each
on one core. Here the forward writes the output and the mask in one parallel pass, and the
backward passes the gradient where the mask is set (0 elsewhere, as PyTorch's threshold
backward). Small arrays and devices keep NumPy's (or the GPU layer's) array ops: a parallel
launch would cost more than it saves.
"""

import numpy as np
from numba import prange

from ._targets import cpu_kernel

__all__ = ["MIN_SIZE", "relu_forward", "relu_backward"]

MIN_SIZE = 1 << 15  # elements; below, NumPy's single pass is as fast


@cpu_kernel
def _relu_forward_cpu(x, y, pos):
    for i in prange(x.size):
        v = x[i]
        p = v > 0
        pos[i] = p
        y[i] = v if (p or v != v) else 0  # NaN stays NaN, as np.maximum(x, 0)


@cpu_kernel
def _relu_backward_cpu(g, pos, out):
    for i in prange(g.size):
        out[i] = g[i] if pos[i] else 0


def relu_forward(x):
    """``x`` (contiguous float, host) -> (max(x, 0), the mask x > 0), both of x's shape."""
    y = np.empty_like(x)
    pos = np.empty(x.shape, np.bool_)
    _relu_forward_cpu(x.reshape(-1), y.reshape(-1), pos.reshape(-1))
    return y, pos


def relu_backward(g, pos):
    """The gradient ``g`` where ``pos`` (0 elsewhere), in g's dtype."""
    g = np.ascontiguousarray(g)
    out = np.empty_like(g)
    _relu_backward_cpu(g.reshape(-1), pos.reshape(-1), out.reshape(-1))
    return out
