"""Batch normalisation in training mode, fused per channel (CPU).

With NumPy, batch norm's forward is six passes over the activations (mean, centre, square, mean,
scale, shift) and its backward five; these kernels take two and two, one channel per ``prange``
iteration (a channel of a U-Net activation, e.g. 8×48×48 floats, stays in L2 between passes)::

    forward:   mean, var over (N, L)   ->  x̂ = (x − mean)·inv_std,  y = γ·x̂ + β
    backward:  Σg, Σg·x̂ over (N, L)   ->  gx = γ·inv_std·(g − Σg/m − x̂·Σg·x̂/m)

With ``relu`` the ReLU that follows batch norm in a conv → BN → ReLU block is fused in: the
forward writes max(γ·x̂ + β, 0), and the backward zeroes g where γ·x̂ + β <= 0 (recomputed from
the saved x̂ by the same operations, so it is the forward's mask bit for bit). That saves the
ReLU's own passes, two forward and three backward, over the block's largest arrays.

Sums run in float64 whatever the input dtype. ``fastmath={"reassoc"}`` lets LLVM vectorise them
(the order of a sum is fixed at compile time, so results are still deterministic). Device arrays
keep the array-op path of ``minidense.ops.norm``.
"""

import numba
import numpy as np
from numba import prange

__all__ = ["batch_norm_train_forward", "batch_norm_train_backward"]

_reduce_kernel = numba.njit(parallel=True, cache=True, fastmath={"reassoc"})


@_reduce_kernel
def _bn_forward_cpu(x, gamma, beta, eps, y, xhat, mean, var, inv_std, relu):
    """x (N, C, L) -> y, xhat (N, C, L); mean, var, inv_std (C,) float64."""
    N, C, L = x.shape
    m = N * L
    for c in prange(C):
        s = 0.0
        for n in range(N):
            for i in range(L):
                s += x[n, c, i]
        mu = s / m
        s2 = 0.0
        for n in range(N):
            for i in range(L):
                d = x[n, c, i] - mu
                s2 += d * d
        v = s2 / m
        r = 1.0 / np.sqrt(v + eps)
        mean[c], var[c], inv_std[c] = mu, v, r
        g, b = gamma[c], beta[c]
        for n in range(N):
            for i in range(L):
                h = (x[n, c, i] - mu) * r
                xhat[n, c, i] = h
                o = h * g + b
                y[n, c, i] = 0 if (relu and o <= 0) else o  # NaN stays NaN, as in relu()


@_reduce_kernel
def _bn_backward_cpu(g, xhat, gamma, beta, inv_std, gx, g_gamma, g_beta, need_input, relu):
    """g, xhat (N, C, L) -> gx (N, C, L) (when ``need_input``), g_gamma, g_beta (C,) float64.
    With ``relu``, g is first zeroed where the forward's γ·x̂ + β was not positive."""
    N, C, L = g.shape
    m = N * L
    for c in prange(C):
        sg = 0.0
        sgx = 0.0
        gm, bt = gamma[c], beta[c]
        for n in range(N):
            for i in range(L):
                gi = g[n, c, i]
                if relu and not (xhat[n, c, i] * gm + bt > 0):
                    gi = 0
                sg += gi
                sgx += gi * xhat[n, c, i]
        g_beta[c], g_gamma[c] = sg, sgx
        if need_input:
            k = gm * inv_std[c]
            a, b = sg / m, sgx / m
            for n in range(N):
                for i in range(L):
                    gi = g[n, c, i]
                    if relu and not (xhat[n, c, i] * gm + bt > 0):
                        gi = 0
                    gx[n, c, i] = k * (gi - a - xhat[n, c, i] * b)


def _as_ncl(a):
    return np.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def batch_norm_train_forward(x, gamma, beta, eps, relu=False):
    """x (N, C, ...), gamma, beta (C,) -> y, xhat (x's shape and dtype); mean, var (C,) in x's
    dtype; inv_std (C,) float64. Statistics over every axis but 1 (biased variance). ``relu``:
    y = max(γ·x̂ + β, 0)."""
    x3 = _as_ncl(x)
    C = x3.shape[1]
    y, xhat = np.empty_like(x3), np.empty_like(x3)
    mean, var, inv_std = np.empty(C), np.empty(C), np.empty(C)
    _bn_forward_cpu(x3, gamma, beta, float(eps), y, xhat, mean, var, inv_std, bool(relu))
    dt = x.dtype
    return y.reshape(x.shape), xhat.reshape(x.shape), mean.astype(dt), var.astype(dt), inv_std


def batch_norm_train_backward(g, xhat, gamma, beta, inv_std, need_input=True, relu=False):
    """Gradients of ``batch_norm_train_forward``'s y (with the same ``relu``): (gx or None,
    g_gamma, g_beta)."""
    g3, xhat3 = _as_ncl(g), _as_ncl(xhat)
    C = g3.shape[1]
    gx = np.empty_like(g3) if need_input else np.empty((0, 0, 0), g3.dtype)
    g_gamma, g_beta = np.empty(C), np.empty(C)
    _bn_backward_cpu(g3, xhat3, gamma, beta, inv_std, gx, g_gamma, g_beta, need_input, bool(relu))
    dt = g.dtype
    gx = gx.reshape(g.shape) if need_input else None
    return gx, g_gamma.astype(dt), g_beta.astype(dt)
