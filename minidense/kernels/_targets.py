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
    "dual", "dual_calling", "cpu_kernel", "owned_plane", "for_each_element", "ELEMENTS", "unravel_nchw_cpu",
    "unravel_nchw_cuda",
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


@numba.njit(inline="always", cache=True)
def owned_plane(a, nc):
    """``(n, c, a[n, c])`` for the flat plane number ``nc`` of ``a (N, C, H, W)``, zeroed: the
    slice a CPU backward's ``prange`` iteration owns, and alone writes (no races)."""
    n, c = nc // a.shape[1], nc % a.shape[1]
    plane = a[n, c]
    plane[:] = 0
    return n, c, plane


def cpu_kernel(fn):
    """A parallel CPU kernel, cached on disk so a second process starts fast."""
    return numba.njit(parallel=True, cache=True, fastmath=False)(fn)


# The per-element device functions of the kernels made by ``for_each_element``, by name: a
# kernel's closure names them here (the CUDA compile check finds them again by that name).
ELEMENTS = {}


def for_each_element(element):
    """The CUDA kernel ``kernel[launch(b.size)](a, b, params)`` that runs
    ``element(a, b, n, c, h, w, params)`` once for every element ``(n, c, h, w)`` of the 4-D array
    ``b``, one thread each, grid-stride: the loop of every one-thread-per-element kernel, written
    once. ``element`` (plain Python, compiled here for the device) is the kernel's own math; it
    reads ``a`` and writes ``b``, or, for a scatter, reads ``b`` and writes ``a``. ``params`` is a
    tuple of scalars."""
    name = f"{element.__module__}.{element.__qualname__}"
    device_fn = ELEMENTS[name] = cuda.jit(device=True)(element)
    return _make_for_each(device_fn)


def _make_for_each(element):
    @cuda.jit
    def for_each_kernel(a, b, params):
        N, C, H, W = b.shape
        start, step = cuda.grid(1), cuda.gridsize(1)
        for e in range(start, N * C * H * W, step):
            n, c, h, w = unravel_nchw_cuda(e, C, H, W)
            element(a, b, n, c, h, w, params)

    return for_each_kernel
