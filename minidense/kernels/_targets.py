"""Compile one per-element function for both targets.

The rule of this package: the math of one output element is written once, as a plain Python
function over scalars and arrays, and compiled twice::

    def bilinear_weights(y, x, H, W): ...              # plain Python, written once
    bilinear_weights_cpu, bilinear_weights_cuda = dual(bilinear_weights)

The CPU twin is inlined into a ``numba.njit(parallel=True)`` loop over ``prange``; the CUDA twin is
a ``cuda.jit(device=True)`` function called from a grid-stride ``cuda.jit`` kernel, launched with
the GPU layer's ``launch(n)`` (re-exported here with the rest of what a kernel file needs).
"""

import types

import numba
from numba import cuda

from ..gpu import THREADS, Launch, grid_for, is_device_array, launch

__all__ = [
    "dual", "dual_calling", "cpu_kernel", "unravel_nchw_cpu", "unravel_nchw_cuda",
    "is_device_array", "launch", "Launch", "grid_for", "THREADS",
]  # fmt: skip


def dual(fn):
    """Return ``(cpu_version, cuda_version)`` of a scalar device function ``fn``."""
    return numba.njit(inline="always", cache=True)(fn), cuda.jit(device=True)(fn)


def dual_calling(fn, **helpers):
    """``dual(fn)`` for a helper that calls other dual helpers by their global name.

    Each compiled copy of ``fn`` sees its own target's twin of every helper, e.g.
    ``dual_calling(f, c_round=(c_round_cpu, c_round_cuda))``. Called from plain Python, ``fn``
    uses the module-level names (the CPU twins).
    """

    def rebind(target):
        scope = dict(fn.__globals__)
        scope.update({name: pair[target] for name, pair in helpers.items()})
        return types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__)

    return numba.njit(inline="always", cache=True)(rebind(0)), cuda.jit(device=True)(rebind(1))


def unravel_nchw(e, C, H, W):
    """Flat row-major index ``e`` of an ``(N, C, H, W)`` array → ``(n, c, h, w)``: what every
    one-thread-per-element kernel does first."""
    return e // (W * H * C), (e // (W * H)) % C, (e // W) % H, e % W


unravel_nchw_cpu, unravel_nchw_cuda = dual(unravel_nchw)


def cpu_kernel(fn):
    """A parallel CPU kernel, cached on disk so a second process starts fast."""
    return numba.njit(parallel=True, cache=True, fastmath=False)(fn)
