"""The CUDA array module: ``CudaArray`` and NumPy-named functions over it, on our own Numba kernels.

Ops are written against NumPy-style arrays (``a + b``, ``x.sum(axis=1, keepdims=True)``,
``xp.exp(x)``, ``x[idx]``...). A raw Numba device array offers none of that, so ``CudaArray`` wraps
one and implements the subset we use, with NumPy's broadcasting and dtype rules; the functions at
the bottom of this module carry NumPy's names (every name in ``backend.PRIMITIVES``). Data never
leaves the device: only *index* computation (the flat positions that an integer or bool index
selects) happens on the host.

Storage is always C-contiguous, one flat device buffer per array. ``reshape`` and contiguous
slices are views of that buffer (as in NumPy); ``transpose``, strided slices and ``broadcast_to``
make copies with one strided-copy kernel.

The kernels, each a 1-D grid-stride loop (one thread per output element):

=====================  ======================================================================
``map``                out[i] = op(a[i])                          (unary math, casts)
``zip`` / ``zip3``     out[i] = op(a[i·sa], b[i·sb])              (same shape, or a 1-element input)
strided ``zip``        out[i] = op(a[off_a(i)], b[off_b(i)])       (broadcasting: stride 0 on a
                                                                    broadcast axis)
``copy``               dst[off_d(i)] = src[off_s(i)]               (transpose, slices, concat, pad)
``reduce``             out[r] = op over row r of a (rows, m) view   (sum, max, min; long rows in
                                                                    several passes)
``matmul``             TILE×TILE shared-memory tiles, batch dims broadcast
``gather`` / scatter   advanced indexing, ``add_at`` (atomic add), take/put_along_axis
=====================  ======================================================================

The per-element functions (``_add``, ``_maximum``, ...) are plain Python, written once and compiled
with ``cuda.jit(device=True)``; a small factory turns each into a kernel, cached by name.

Under the Numba CUDA simulator every CUDA thread is a Python thread, so launches there use one
block of a few threads (the grid-stride loops cover any size).
"""

import builtins
import math

import numba
import numpy as np
from numba import cuda

from ..kernels._targets import Launch

__all__ = ["CudaArray", "is_available", "require_gpu", "to_host", "constant"]

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
GPU_THREADS, GPU_TILE = 256, 16
THREADS = 4 if SIMULATOR else GPU_THREADS  # threads per block of the 1-D kernels
# The matmul's tile edge: the simulator runs TILE² Python threads a block.
TILE = 4 if SIMULATOR else GPU_TILE
MAX_DIMS = 8  # shapes are padded to this many axes, so each kernel compiles once per dtype
REDUCE_CHUNK = 1024  # rows longer than this are reduced in several passes (more parallelism)


def _launch(n):
    """(blocks, threads) for a grid-stride launch over ``n`` items."""
    if SIMULATOR:
        return Launch(1, builtins.max(1, builtins.min(THREADS, n)), GPU_THREADS)
    return Launch(
        builtins.max(1, builtins.min((n + THREADS - 1) // THREADS, 65535)), THREADS, GPU_THREADS
    )


# ------------------------------------------------------------------------------------------------
# Availability
_AVAILABLE = None


def is_available():
    """True on a machine with a usable CUDA GPU, or under the Numba CUDA simulator."""
    global _AVAILABLE
    if _AVAILABLE is None:
        _AVAILABLE = SIMULATOR or bool(cuda.is_available())
    return _AVAILABLE


def require_gpu():
    if not is_available():
        raise RuntimeError(
            "no CUDA GPU found: numba.cuda.is_available() is False (no NVIDIA GPU or driver). "
            "Keep tensors on 'cpu', or set NUMBA_ENABLE_CUDASIM=1 before importing minidense to "
            "run the CUDA code on Numba's (slow) CUDA simulator."
        )


# ------------------------------------------------------------------------------------------------
# Index helpers (device) and per-element functions (written once, compiled for the device)


@cuda.jit(device=True)
def _offset(i, shape, strides):
    """Offset of the ``i``-th element (C order over ``shape``) in an array with ``strides``."""
    off = 0
    for k in range(len(shape) - 1, -1, -1):
        n = shape[k]
        off += (i % n) * strides[k]
        i //= n
    return off


def _add(a, b):
    return a + b


def _subtract(a, b):
    return a - b


def _multiply(a, b):
    return a * b


def _divide(a, b):
    return a / b


def _power(a, b):
    return a**b


def _maximum(a, b):
    return a if (a >= b or a != a) else b  # NaN propagates, as np.maximum


def _minimum(a, b):
    return a if (a <= b or a != a) else b


def _equal(a, b):
    return a == b


def _not_equal(a, b):
    return a != b


def _less(a, b):
    return a < b


def _less_equal(a, b):
    return a <= b


def _greater(a, b):
    return a > b


def _greater_equal(a, b):
    return a >= b


def _logical_and(a, b):
    return (a != 0) and (b != 0)


def _logical_or(a, b):
    return (a != 0) or (b != 0)


def _logical_xor(a, b):
    return (a != 0) != (b != 0)


def _where(c, a, b):
    return a if c else b


def _clip(x, lo, hi):
    return _minimum_dev(_maximum_dev(x, lo), hi)  # np.clip = minimum(maximum(x, lo), hi)


def _identity(a):
    return a


def _negative(a):
    return -a


# The math below casts every constant to the argument's type T: compiled code would otherwise
# promote a float32 compared with 0, or returned beside math.inf, to float64 (slow on most GPUs).


def _absolute(a):
    return -a if a < type(a)(0) else a


def _sign(a):
    T = type(a)
    if a != a:
        return a
    return T(1) if a > T(0) else (T(-1) if a < T(0) else T(0))


def _exp(a):
    # Past log(largest value) the result is inf, as on the GPU; the simulator's math.exp would
    # raise (float64) or overflow when stored (float32). A 24-bit significand means float32.
    T = type(a)
    limit = T(88.72283) if T(16777217) == T(16777216) else T(709.782712893384)
    if a > limit:
        return T(math.inf)
    return math.exp(a)


def _log(a):
    T = type(a)
    return math.log(a) if a > T(0) else (T(-math.inf) if a == T(0) else T(math.nan))


def _log1p(a):
    T = type(a)
    return math.log1p(a) if a > T(-1) else (T(-math.inf) if a == T(-1) else T(math.nan))


def _sqrt(a):
    return math.sqrt(a) if a >= type(a)(0) else type(a)(math.nan)


def _tanh(a):
    return math.tanh(a)


def _logical_not(a):
    return not a


def _nonzero(a):
    return a != 0


_maximum_dev = cuda.jit(device=True)(_maximum)
_minimum_dev = cuda.jit(device=True)(_minimum)

_DEVICE_FNS = {
    name: cuda.jit(device=True)(fn)
    for name, fn in {
        "add": _add, "subtract": _subtract, "multiply": _multiply, "divide": _divide,
        "power": _power, "maximum": _maximum, "minimum": _minimum, "equal": _equal,
        "not_equal": _not_equal, "less": _less, "less_equal": _less_equal, "greater": _greater,
        "greater_equal": _greater_equal, "logical_and": _logical_and, "logical_or": _logical_or,
        "logical_xor": _logical_xor, "where": _where, "clip": _clip, "identity": _identity,
        "negative": _negative, "absolute": _absolute, "sign": _sign, "exp": _exp, "log": _log,
        "log1p": _log1p, "sqrt": _sqrt, "tanh": _tanh, "logical_not": _logical_not,
        "nonzero": _nonzero,
    }.items()
}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Kernel factories: one kernel per per-element function, built on first use and cached.


def _make_map(op):
    @cuda.jit
    def map_kernel(out, a):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[i])

    return map_kernel


def _make_zip(op):
    @cuda.jit
    def zip_kernel(out, a, b, sa, sb):
        # sa, sb are 1 for a full input and 0 for a one-element input (a scalar).
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[i * sa], b[i * sb])

    return zip_kernel


def _make_zip_strided(op):
    @cuda.jit
    def zip_strided_kernel(out, a, b, shape, sa, sb):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(a[_offset(i, shape, sa)], b[_offset(i, shape, sb)])

    return zip_strided_kernel


def _make_zip3(op):
    @cuda.jit
    def zip3_kernel(out, a, b, c, shape, sa, sb, sc):
        start, step = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.size, step):
            out[i] = op(
                a[_offset(i, shape, sa)], b[_offset(i, shape, sb)], c[_offset(i, shape, sc)]
            )

    return zip3_kernel


def _make_reduce(op):
    @cuda.jit
    def reduce_kernel(src, out, m, chunk, nchunks):
        # Row r of the (rows, m) input is cut into nchunks pieces of `chunk`; out[r, c] reduces one.
        start, step = cuda.grid(1), cuda.gridsize(1)
        for o in range(start, out.size, step):
            r = o // nchunks
            c = o - r * nchunks
            base = r * m + c * chunk
            stop = m - c * chunk
            if stop > chunk:
                stop = chunk
            acc = src[base]
            for j in range(1, stop):
                acc = op(acc, src[base + j])
            out[o] = acc

    return reduce_kernel


_FACTORIES = {
    "map": _make_map,
    "zip": _make_zip,
    "zip_strided": _make_zip_strided,
    "zip3": _make_zip3,
    "reduce": _make_reduce,
}
_KERNELS = {}


def _kernel(kind, op):
    key = (kind, op)
    kern = _KERNELS.get(key)
    if kern is None:
        kern = _KERNELS[key] = _FACTORIES[kind](_DEVICE_FNS[op])
    return kern


@cuda.jit
def _copy_kernel(dst, d0, ds, src, s0, ss, shape, n):
    """dst[d0 + off(i, ds)] = src[s0 + off(i, ss)] for the n elements of ``shape``."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, step):
        dst[d0 + _offset(i, shape, ds)] = src[s0 + _offset(i, shape, ss)]


@cuda.jit
def _fill_kernel(out, value):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = value


@cuda.jit
def _arange_kernel(out, first, delta):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = first + i * delta


@cuda.jit
def _argmax_kernel(src, out, m):
    """out[r] = index of the first maximum of row r of a (rows, m) array (NaN wins, as NumPy)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, out.size, step):
        base = r * m
        best = src[base]
        where = 0
        for j in range(1, m):
            v = src[base + j]
            if best == best and (v > best or v != v):
                best = v
                where = j
        out[r] = where


@cuda.jit
def _gather_kernel(out, src, index):
    """out[i] = src[index[i]]"""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[index[i]]


@cuda.jit
def _scatter_kernel(dst, index, src, position, shape, ss):
    """dst[index[k]] = src[off(position[k])]: element position[k] of the (broadcast) values."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for k in range(start, index.size, step):
        dst[index[k]] = src[_offset(position[k], shape, ss)]


@cuda.jit
def _scatter_add_kernel(dst, index, src, shape, ss):
    """dst[index[i]] += src[off(i)], atomically: repeated indices accumulate (order, and so the
    last bits of a float sum, are non-deterministic)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, index.size, step):
        cuda.atomic.add(dst, index[i], src[_offset(i, shape, ss)])


@cuda.jit
def _take_along_kernel(out, arr, sarr, ind, sind, shape, axis_len, axis_stride):
    """out[i] = arr[off(i) + ind[i]·axis_stride] (the axis' own stride is 0 in sarr)."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        j = ind[_offset(i, shape, sind)]
        if j < 0:
            j += axis_len
        out[i] = arr[_offset(i, shape, sarr) + j * axis_stride]


@cuda.jit
def _put_along_kernel(arr, sarr, ind, sind, values, sval, shape, n, axis_len, axis_stride):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, n, step):
        j = ind[_offset(i, shape, sind)]
        if j < 0:
            j += axis_len
        arr[_offset(i, shape, sarr) + j * axis_stride] = values[_offset(i, shape, sval)]


def _make_matmul(nb_dtype):
    """A tiled matmul for one dtype (the shared tiles need it at compile time)."""

    @cuda.jit
    def matmul_kernel(a, b, out, M, K, N, batch, sa, sb, nbatch):
        # out[z] = a[z] @ b[z] for each of the nbatch (broadcast) batch entries, all row-major.
        # A block computes one TILE×TILE tile of out[z] at a time (a grid-stride loop over the
        # tiles), walking along K a tile at a time: it loads a tile of a and one of b into shared
        # memory, syncs, and accumulates their product.
        ta = cuda.shared.array((TILE, TILE), nb_dtype)
        tb = cuda.shared.array((TILE, TILE), nb_dtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tiles_n = (N + TILE - 1) // TILE
        tiles_per_matrix = ((M + TILE - 1) // TILE) * tiles_n
        for tile in range(cuda.blockIdx.x, tiles_per_matrix * nbatch, cuda.gridDim.x):
            z = tile // tiles_per_matrix
            t = tile - z * tiles_per_matrix
            row = (t // tiles_n) * TILE + ty
            col = (t % tiles_n) * TILE + tx
            oa = _offset(z, batch, sa)
            ob = _offset(z, batch, sb)
            acc = nb_dtype(0)
            for k0 in range(0, K, TILE):
                k = k0 + tx
                ta[ty, tx] = a[oa + row * K + k] if (row < M and k < K) else nb_dtype(0)
                k = k0 + ty
                tb[ty, tx] = b[ob + k * N + col] if (col < N and k < K) else nb_dtype(0)
                cuda.syncthreads()
                for kk in range(TILE):
                    acc += ta[ty, kk] * tb[kk, tx]
                cuda.syncthreads()
            if row < M and col < N:
                out[(z * M + row) * N + col] = acc

    return matmul_kernel


_MATMUL_KERNELS = {}


# Raw (non-contiguous) Numba device arrays from elsewhere are made contiguous by these.
@cuda.jit
def _densify1(src, out):
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[i]


@cuda.jit
def _densify2(src, out):
    B = src.shape[1]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[i // B, i % B]


@cuda.jit
def _densify3(src, out):
    B, C = src.shape[1], src.shape[2]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[i // (B * C), (i // C) % B, i % C]


@cuda.jit
def _densify4(src, out):
    B, C, D = src.shape[1], src.shape[2], src.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.size, step):
        out[i] = src[i // (B * C * D), (i // (C * D)) % B, (i // D) % C, i % D]


_DENSIFY = {1: _densify1, 2: _densify2, 3: _densify3, 4: _densify4}


# ------------------------------------------------------------------------------------------------
# Shapes and strides (host side; strides are in elements, not bytes)


def _prod(shape):
    return math.prod(shape)


def _contiguous_strides(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


def _broadcast_strides(shape, out_shape):
    """Strides that read an array of ``shape`` (contiguous) at every index of ``out_shape``."""
    pad = len(out_shape) - len(shape)
    full = (1,) * pad + tuple(shape)
    return tuple(0 if n == 1 else s for n, s in zip(full, _contiguous_strides(full), strict=True))


def _dims(shape, *strides):
    """Shape and strides as int tuples of a fixed length, so a GPU kernel compiles once for all
    ranks (left-padded with size-1 axes). The simulator gets the same length: its launches then
    have the argument types a GPU's have, which the compile check (``check-cuda``) compiles."""
    n = len(shape)
    if n > MAX_DIMS:
        raise ValueError(f"CUDA arrays support at most {MAX_DIMS} dimensions, got shape {shape}")
    pad = MAX_DIMS - n
    out = [tuple([1] * pad + [int(s) for s in shape])]
    out += [tuple([0] * pad + [int(s) for s in st]) for st in strides]
    return out


def _is_contiguous(shape, strides):
    expected = _contiguous_strides(shape)
    return all(n == 1 or s == e for n, s, e in zip(shape, strides, expected, strict=True))


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % builtins.max(ndim, 1))
    if ndim == 0:
        return ()
    return tuple(sorted(set(out)))


# ------------------------------------------------------------------------------------------------
# CudaArray

# Under the simulator, kernels accept a CudaArray as an "argument hint" that hands over its device
# array; on a GPU, Numba reads the ``__cuda_array_interface__`` instead.
if SIMULATOR:
    from numba.cuda.simulator.args import ArgHint as _KernelArgBase
else:
    _KernelArgBase = object


class CudaArray(_KernelArgBase):
    """An n-dimensional array on the GPU: a C-contiguous flat Numba device buffer plus a shape.

    Supports NumPy's operators with broadcasting, ``reshape`` (a view), ``transpose``, indexing,
    ``sum``/``max``/``min``/``mean``/``argmax``, ``astype``, ``copy`` and ``copy_to_host()``. It
    deliberately has no ``__array__``: ``np.asarray(cuda_array)`` fails instead of copying
    silently; ``copy_to_host()`` is the explicit way to the host.
    """

    __array_ufunc__ = None  # NumPy defers to our reflected operators, and np.exp(x) fails loudly
    __hash__ = object.__hash__

    def __init__(self, buf, shape, owner=None):
        self._buf = buf  # 1-D device array with prod(shape) elements (one for a 0-d array)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(buf.dtype)
        self._owner = buf if owner is None else owner  # the allocation this may be a view of
        self._dev = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def empty(cls, shape, dtype):
        shape = _shape_tuple(shape)
        return cls(cuda.device_array(_prod(shape), dtype=np.dtype(dtype)), shape)

    @classmethod
    def from_host(cls, array):
        array = np.asarray(array, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"only numeric arrays can go to the GPU, got dtype {array.dtype}")
        return cls(cuda.to_device(array.reshape(-1)), array.shape)

    @classmethod
    def from_device(cls, dev):
        """Wrap a raw Numba device array (a copy only when it is not C-contiguous)."""
        shape = tuple(dev.shape)
        if dev.is_c_contiguous():
            return cls(dev.reshape(_prod(shape)), shape)
        if len(shape) not in _DENSIFY:
            raise ValueError(f"cannot wrap a non-contiguous {len(shape)}-D device array")
        out = cls.empty(shape, dev.dtype)
        _DENSIFY[len(shape)][_launch(out.size)](dev, out._buf)
        return out

    # ---------------------------------------------------------------- array protocol
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return _prod(self.shape)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def strides(self):
        """Byte strides, as NumPy reports them (always C-contiguous)."""
        return tuple(s * self.dtype.itemsize for s in _contiguous_strides(self.shape))

    @property
    def flags(self):
        return {"C_CONTIGUOUS": True, "F_CONTIGUOUS": self.ndim <= 1, "OWNDATA": True}

    def is_c_contiguous(self):
        return True

    def is_f_contiguous(self):
        return builtins.sum(n > 1 for n in self.shape) <= 1

    @property
    def dev(self):
        """The data as a Numba device array of this shape (a view, no copy)."""
        if self._dev is None:
            self._dev = self._buf.reshape(self.shape) if self.shape != (self.size,) else self._buf
        return self._dev

    @property
    def __cuda_array_interface__(self):
        return self.dev.__cuda_array_interface__

    def to_device(self, retr, stream=0):
        """Simulator only: the array a kernel sees when given this CudaArray (see ArgHint)."""
        return self.dev

    def copy_to_host(self):
        """A NumPy copy of the data."""
        if self.size == 0:
            return np.empty(self.shape, dtype=self.dtype)
        return self._buf.copy_to_host().reshape(self.shape)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "a CudaArray lives on the GPU: NumPy cannot use it directly; call .copy_to_host() "
            "(or Tensor.numpy()) to make a host copy on purpose"
        )

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return f"CudaArray({self.copy_to_host()!r}, device='cuda')"

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.copy_to_host().reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of an array with {self.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def any(self):
        return bool(_reduce(self != 0, None, False, "maximum").item()) if self.size else False

    def all(self):
        return bool(_reduce(self != 0, None, False, "minimum").item()) if self.size else True

    # ---------------------------------------------------------------- layout
    def reshape(self, *shape, order="C"):
        if order != "C":
            raise ValueError("CudaArray.reshape supports only order='C'")
        shape = (
            shape[0] if len(shape) == 1 and not isinstance(shape[0], int | np.integer) else shape
        )
        new = _resolve_shape(self.shape, shape)
        return CudaArray(self._buf, new, self._owner)

    def ravel(self):
        return self.reshape(-1)

    def flatten(self):
        return self.reshape(-1).copy()  # a copy, as NumPy's

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
            axes = axes[0]  # a tuple, list or array of axes
        return transpose(self, None if axes is None or len(axes) == 0 else axes)

    @property
    def T(self):
        return transpose(self)

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        a, b = a % self.ndim, b % self.ndim
        axes[a], axes[b] = axes[b], axes[a]
        return transpose(self, axes)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self.copy() if copy else self
        out = CudaArray.empty(self.shape, dtype)
        if self.size:
            op = "nonzero" if dtype == np.bool_ else "identity"
            _kernel("map", op)[_launch(self.size)](out._buf, self._buf)
        return out

    def copy(self):
        out = CudaArray.empty(self.shape, self.dtype)
        if self.size:
            _kernel("map", "identity")[_launch(self.size)](out._buf, self._buf)
        return out

    def fill(self, value):
        if self.size:
            _fill_kernel[_launch(self.size)](self._buf, self.dtype.type(value))

    # ---------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims=False, dtype=None):
        out = _reduce(self, axis, keepdims, "add")
        return out if dtype is None else out.astype(dtype, copy=False)

    def max(self, axis=None, keepdims=False):
        return _reduce(self, axis, keepdims, "maximum")

    def min(self, axis=None, keepdims=False):
        return _reduce(self, axis, keepdims, "minimum")

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return argmax(self, axis, keepdims)

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, index):
        if _is_basic(index):
            off, shape, strides = _basic_view(self.shape, index)
            size = _prod(shape)
            if size == 0:
                return CudaArray.empty(shape, self.dtype)
            if _is_contiguous(shape, strides):
                return CudaArray(self._buf[off : off + size], shape, self._owner)
            out = CudaArray.empty(shape, self.dtype)
            _copy(out._buf, 0, _contiguous_strides(shape), self._buf, off, strides, shape)
            return out
        flat = _flat_indices(self.shape, index)
        out = CudaArray.empty(flat.shape, self.dtype)
        if flat.size:
            _gather_kernel[_launch(flat.size)](out._buf, self._buf, cuda.to_device(flat.ravel()))
        return out

    def __setitem__(self, index, value):
        value = _operand(value, self.dtype)
        if value.dtype != self.dtype:
            value = value.astype(self.dtype)
        elif value._owner is self._owner:
            value = value.copy()  # it may overlap what we are about to write
        if _is_basic(index):
            off, shape, strides = _basic_view(self.shape, index)
            _check_broadcastable(value.shape, shape, "assign")
            _copy(
                self._buf,
                off,
                strides,
                value._buf,
                0,
                _broadcast_strides(value.shape, shape),
                shape,
            )
            return
        flat = _flat_indices(self.shape, index)
        _check_broadcastable(value.shape, flat.shape, "assign")
        if flat.size:
            # A repeated index takes its last value, as in NumPy: keep the last occurrences only.
            _, last = np.unique(flat.ravel()[::-1], return_index=True)
            position = np.sort(flat.size - 1 - last)
            shape, sv = _dims(flat.shape, _broadcast_strides(value.shape, flat.shape))
            _scatter_kernel[_launch(position.size)](
                self._buf,
                cuda.to_device(np.ascontiguousarray(flat.ravel()[position])),
                value._buf,
                cuda.to_device(position),
                shape,
                sv,
            )

    # ---------------------------------------------------------------- operators
    def __add__(self, other):
        return _binary("add", self, other)

    def __radd__(self, other):
        return _binary("add", other, self)

    def __sub__(self, other):
        return _binary("subtract", self, other)

    def __rsub__(self, other):
        return _binary("subtract", other, self)

    def __mul__(self, other):
        return _binary("multiply", self, other)

    def __rmul__(self, other):
        return _binary("multiply", other, self)

    def __truediv__(self, other):
        return _binary("divide", self, other)

    def __rtruediv__(self, other):
        return _binary("divide", other, self)

    def __pow__(self, other):
        return _binary("power", self, other)

    def __rpow__(self, other):
        return _binary("power", other, self)

    def __matmul__(self, other):
        return matmul(self, other) if isinstance(other, CudaArray) else NotImplemented

    def __rmatmul__(self, other):
        return matmul(other, self) if isinstance(other, CudaArray) else NotImplemented

    def __neg__(self):
        return _unary("negative", self)

    def __pos__(self):
        return self.copy()

    def __abs__(self):
        return _unary("absolute", self)

    def __invert__(self):
        if self.dtype != np.bool_:
            raise TypeError("~ is supported on bool CUDA arrays only")
        return _unary("logical_not", self)

    def __and__(self, other):
        return _binary("logical_and", self, other, logical=True)

    __rand__ = __and__

    def __or__(self, other):
        return _binary("logical_or", self, other, logical=True)

    __ror__ = __or__

    def __xor__(self, other):
        return _binary("logical_xor", self, other, logical=True)

    __rxor__ = __xor__

    def __eq__(self, other):
        return _binary("equal", self, other)

    def __ne__(self, other):
        return _binary("not_equal", self, other)

    def __lt__(self, other):
        return _binary("less", self, other)

    def __le__(self, other):
        return _binary("less_equal", self, other)

    def __gt__(self, other):
        return _binary("greater", self, other)

    def __ge__(self, other):
        return _binary("greater_equal", self, other)

    def __iadd__(self, other):
        return _binary("add", self, other, out=self)

    def __isub__(self, other):
        return _binary("subtract", self, other, out=self)

    def __imul__(self, other):
        return _binary("multiply", self, other, out=self)

    def __itruediv__(self, other):
        return _binary("divide", self, other, out=self)

    def __ipow__(self, other):
        return _binary("power", self, other, out=self)


# ------------------------------------------------------------------------------------------------
# Helpers behind the operators


def _shape_tuple(shape):
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def _resolve_shape(old, shape):
    shape = list(_shape_tuple(shape))
    size = _prod(old)
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = _prod(n for n in shape if n != -1)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    if _prod(shape) != size or builtins.min(shape, default=0) < 0:
        raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
    return tuple(shape)


def _is_scalar(x):
    return isinstance(x, bool | int | float | np.generic) or (
        isinstance(x, np.ndarray) and x.ndim == 0
    )


_CONSTANTS = {}


def constant(value, dtype):
    """A 0-d device array holding ``value`` as ``dtype``, from a cache (scalars recur in every
    step): read it, never write it in place."""
    dtype = np.dtype(dtype)
    key = (dtype.str, type(value), value)
    try:
        c = _CONSTANTS.get(key)
    except TypeError:  # unhashable, e.g. a 0-d ndarray
        c, key = None, None
    if c is None:
        c = CudaArray.from_host(np.asarray(value).astype(dtype).reshape(()))
        if key is not None and value == value:  # NaN keys would never match again
            if len(_CONSTANTS) > 4096:
                _CONSTANTS.clear()
            _CONSTANTS[key] = c
    return c


def _operand(x, dtype):
    """A CudaArray for ``x``: CudaArrays pass, scalars become constants of ``dtype``."""
    if isinstance(x, CudaArray):
        return x
    if _is_scalar(x):
        return constant(x.item() if isinstance(x, np.ndarray) else x, dtype)
    if hasattr(x, "copy_to_host") and hasattr(x, "is_c_contiguous"):
        return CudaArray.from_device(x)  # a raw Numba device array
    raise TypeError(
        f"cannot combine a CUDA array with {type(x).__name__}: move host data to the GPU first "
        "(Tensor.to('cuda')); NumPy arrays are not copied over implicitly"
    )


def _dtype_of(x):
    if isinstance(x, CudaArray):
        return x.dtype
    if isinstance(x, np.ndarray | np.generic):
        return x.dtype
    return x  # a Python scalar: np.result_type treats it as "weak", as NumPy does


def _result_dtype(*xs):
    return np.result_type(*[_dtype_of(x) for x in xs])


def _check_broadcastable(shape, target, what):
    try:
        if np.broadcast_shapes(shape, target) != tuple(target):
            raise ValueError
    except ValueError:
        raise ValueError(f"cannot {what} shape {shape} into shape {target}") from None


_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


def _accepts(x):
    return isinstance(x, CudaArray) or _is_scalar(x)


def _binary(op, a, b, out=None, logical=False):
    """Elementwise ``op(a, b)`` with NumPy broadcasting; ``out`` (one of the inputs) for ``op=``."""
    if not (_accepts(a) and _accepts(b)):
        other = b if isinstance(a, CudaArray) else a
        if isinstance(other, np.ndarray):
            _operand(other, None)  # raises the TypeError that says how to move it
        return NotImplemented  # e.g. CudaArray * Tensor: the Tensor's reflected operator takes over
    common = _result_dtype(a, b)  # Python scalars are "weak": float32 * 0.5 stays float32
    if logical and common != np.bool_:
        raise TypeError(f"{op} is supported on bool CUDA arrays only, got {common}")
    if logical or op in _COMPARISONS:
        result = np.dtype(np.bool_)
    elif op == "divide" and common.kind in "biu":
        result = np.dtype(np.float64)  # true division of integers, as NumPy
    else:
        result = common
    a, b = _operand(a, common), _operand(b, common)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if out is not None:
        if shape != out.shape:
            raise ValueError(
                f"non-broadcastable output: {op} of {a.shape} and {b.shape} into {out.shape}"
            )
        if np.can_cast(result, out.dtype, "same_kind") is False:
            raise TypeError(f"cannot cast {op} result {result} to {out.dtype} in place")
        if b._owner is out._owner and b is not out:
            b = b.copy()  # an overlapping view would be read while written
    else:
        out = CudaArray.empty(shape, result)
    n = out.size
    if n == 0:
        return out
    if all(x.shape == shape or x.size == 1 for x in (a, b)):
        _kernel("zip", op)[_launch(n)](out._buf, a._buf, b._buf, int(a.size == n), int(b.size == n))
    else:
        dims, sa, sb = _dims(
            shape, _broadcast_strides(a.shape, shape), _broadcast_strides(b.shape, shape)
        )
        _kernel("zip_strided", op)[_launch(n)](out._buf, a._buf, b._buf, dims, sa, sb)
    return out


_FLOAT_RESULT = {"exp", "log", "log1p", "sqrt", "tanh"}


def _unary(op, a):
    a = _as_cuda(a, op)
    if op in _FLOAT_RESULT:
        dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
        a = a.astype(dtype, copy=False)  # the math runs in its argument's type: ints as float64
    elif op == "logical_not":
        dtype = np.dtype(np.bool_)
    else:
        dtype = a.dtype
    out = CudaArray.empty(a.shape, dtype)
    if a.size:
        _kernel("map", op)[_launch(a.size)](out._buf, a._buf)
    return out


def _ternary(op, a, b, c, dtype):
    a, b, c = (_operand(x, dtype) for x in (a, b, c))
    shape = np.broadcast_shapes(a.shape, b.shape, c.shape)
    out = CudaArray.empty(shape, dtype)
    if out.size:
        dims, sa, sb, sc = _dims(shape, *(_broadcast_strides(x.shape, shape) for x in (a, b, c)))
        _kernel("zip3", op)[_launch(out.size)](out._buf, a._buf, b._buf, c._buf, dims, sa, sb, sc)
    return out


def _as_cuda(x, what):
    if isinstance(x, CudaArray):
        return x
    if hasattr(x, "copy_to_host") and hasattr(x, "is_c_contiguous"):
        return CudaArray.from_device(x)
    raise TypeError(f"{what}: expected a CUDA array, got {type(x).__name__}")


def _copy(dst, d0, ds, src, s0, ss, shape):
    """Strided copy of the elements of ``shape`` (strides in elements, bases as offsets)."""
    n = _prod(shape)
    if n == 0:
        return
    dims, ds, ss = _dims(shape, ds, ss)
    _copy_kernel[_launch(n)](dst, int(d0), ds, src, int(s0), ss, dims, n)


def _reduce(a, axis, keepdims, op):
    """sum ("add"), max ("maximum") or min ("minimum") over ``axis``."""
    a = _as_cuda(a, "reduction")
    axes = _norm_axes(axis, a.ndim)
    kept = [k for k in range(a.ndim) if k not in axes]
    if keepdims:
        out_shape = tuple(1 if k in axes else n for k, n in enumerate(a.shape))
    else:
        out_shape = tuple(a.shape[k] for k in kept)
    rows = _prod(a.shape[k] for k in kept)
    m = _prod(a.shape[k] for k in axes)
    if op == "add" and a.dtype.kind in "biu":
        a = a.astype(np.int64)  # NumPy sums bools and small ints as int64
    if m == 0:
        if op != "add":
            name = "maximum" if op == "maximum" else "minimum"
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        return zeros(out_shape, a.dtype)
    if not axes:
        return a.copy().reshape(out_shape)
    if rows == 0:
        return CudaArray.empty(out_shape, a.dtype)
    order = kept + list(axes)
    src = a if order == list(range(a.ndim)) else transpose(a, order)
    buf = src._buf
    while True:
        chunk = m if (m <= REDUCE_CHUNK or rows >= 4096) else REDUCE_CHUNK
        nchunks = (m + chunk - 1) // chunk
        out = cuda.device_array(rows * nchunks, dtype=a.dtype)
        _kernel("reduce", op)[_launch(out.size)](buf, out, m, chunk, nchunks)
        if nchunks == 1:
            return CudaArray(out, out_shape)
        buf, m = out, nchunks  # reduce the partial results of each row again


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, slice)
        or (isinstance(p, int | np.integer) and not isinstance(p, bool | np.bool_))
        for p in parts
    )  # fmt: skip


def _basic_view(shape, index):
    """(offset, shape, strides) in elements of ``base[index]`` for a basic index.

    NumPy does the work on a stand-in with one-byte elements (so byte offsets are element
    offsets); np.empty does not touch its memory, so this is cheap for any size.
    """
    stand = np.empty(builtins.max(_prod(shape), 1), dtype=np.uint8)
    index = index if isinstance(index, tuple) else (index,)
    if not any(p is Ellipsis for p in index):
        index = index + (Ellipsis,)  # so that x[1, 2] gives a 0-d view, not a NumPy scalar
    view = np.lib.stride_tricks.as_strided(stand, shape, _contiguous_strides(shape))[index]
    offset = view.__array_interface__["data"][0] - stand.__array_interface__["data"][0]
    return offset, view.shape, view.strides


def _host_index(index):
    """The index with its arrays on the host (index computation only, never data)."""
    if isinstance(index, tuple):
        return tuple(_host_index(i) for i in index)
    if isinstance(index, CudaArray):
        return index.copy_to_host()
    if isinstance(index, list):
        return np.asarray(index)
    if hasattr(index, "copy_to_host") and not isinstance(index, np.ndarray):
        return index.copy_to_host()
    return index


def _flat_indices(shape, index):
    """Flat positions that ``base[index]`` selects, as a host int64 array of the result's shape."""
    return np.arange(_prod(shape), dtype=np.int64).reshape(shape)[_host_index(index)]


# ------------------------------------------------------------------------------------------------
# The array module: NumPy's names


def asarray(a, dtype=None):
    """``a`` on the GPU (CudaArrays pass through; host data is copied over)."""
    if isinstance(a, CudaArray):
        out = a
    elif hasattr(a, "copy_to_host") and hasattr(a, "is_c_contiguous"):
        out = CudaArray.from_device(a)
    else:
        out = CudaArray.from_host(np.asarray(a))
    return out if dtype is None else out.astype(dtype, copy=False)


def ascontiguousarray(a):
    return _as_cuda(a, "ascontiguousarray")


def to_host(a):
    """A NumPy copy of a CUDA array (NumPy arrays pass through)."""
    return a if isinstance(a, np.ndarray) else a.copy_to_host()


def empty(shape, dtype=np.float64):
    return CudaArray.empty(shape, dtype)


def full(shape, fill_value, dtype=None):
    if dtype is None:
        dtype = np.asarray(fill_value).dtype
    out = CudaArray.empty(shape, dtype)
    out.fill(fill_value)
    return out


def zeros(shape, dtype=np.float64):
    return full(shape, 0, dtype)


def ones(shape, dtype=np.float64):
    return full(shape, 1, dtype)


def empty_like(a, dtype=None):
    return CudaArray.empty(a.shape, a.dtype if dtype is None else dtype)


def zeros_like(a, dtype=None):
    return zeros(a.shape, a.dtype if dtype is None else dtype)


def ones_like(a, dtype=None):
    return ones(a.shape, a.dtype if dtype is None else dtype)


def full_like(a, fill_value, dtype=None):
    return full(a.shape, fill_value, a.dtype if dtype is None else dtype)


def arange(start, stop=None, step=1, dtype=None):
    if stop is None:
        start, stop = 0, start
    host_dtype = np.arange(start, start + step, step).dtype if dtype is None else np.dtype(dtype)
    n = builtins.max(0, math.ceil((stop - start) / step))
    out = CudaArray.empty((n,), host_dtype)
    if n:
        _arange_kernel[_launch(n)](out._buf, host_dtype.type(start), host_dtype.type(step))
    return out


def copy(a):
    return _as_cuda(a, "copy").copy()


# elementwise
def add(a, b):
    return _binary("add", a, b)


def subtract(a, b):
    return _binary("subtract", a, b)


def multiply(a, b):
    return _binary("multiply", a, b)


def divide(a, b):
    return _binary("divide", a, b)


true_divide = divide


def power(a, b):
    return _binary("power", a, b)


def maximum(a, b):
    return _binary("maximum", a, b)


def minimum(a, b):
    return _binary("minimum", a, b)


def equal(a, b):
    return _binary("equal", a, b)


def not_equal(a, b):
    return _binary("not_equal", a, b)


def less(a, b):
    return _binary("less", a, b)


def less_equal(a, b):
    return _binary("less_equal", a, b)


def greater(a, b):
    return _binary("greater", a, b)


def greater_equal(a, b):
    return _binary("greater_equal", a, b)


def logical_and(a, b):
    return _binary("logical_and", _bool(a), _bool(b), logical=True)


def logical_or(a, b):
    return _binary("logical_or", _bool(a), _bool(b), logical=True)


def _bool(x):
    if isinstance(x, CudaArray):
        return x if x.dtype == np.bool_ else x.astype(np.bool_)
    return bool(x)


def negative(a):
    return _unary("negative", a)


def absolute(a):
    return _unary("absolute", a)


abs = absolute  # NumPy's name


def sign(a):
    return _unary("sign", a)


def exp(a):
    return _unary("exp", a)


def log(a):
    return _unary("log", a)


def log1p(a):
    return _unary("log1p", a)


def sqrt(a):
    return _unary("sqrt", a)


def tanh(a):
    return _unary("tanh", a)


def logical_not(a):
    return _unary("logical_not", _bool(a))


def where(condition, a, b):
    """``a`` where ``condition`` holds, else ``b`` (all three broadcast)."""
    condition = _as_cuda(condition, "where(condition)")
    return _ternary("where", condition, a, b, _result_dtype(a, b))


def clip(a, a_min, a_max):
    a = _as_cuda(a, "clip")
    if a_min is None and a_max is None:
        raise ValueError("clip: one of a_min and a_max must be given")
    if a_min is None:
        return minimum(a, a_max)
    if a_max is None:
        return maximum(a, a_min)
    return _ternary("clip", a, a_min, a_max, _result_dtype(a, a_min, a_max))


# reductions
def sum(a, axis=None, keepdims=False, dtype=None):
    return _as_cuda(a, "sum").sum(axis, keepdims, dtype)


def max(a, axis=None, keepdims=False):
    return _reduce(a, axis, keepdims, "maximum")


def min(a, axis=None, keepdims=False):
    return _reduce(a, axis, keepdims, "minimum")


amax, amin = max, min


def mean(a, axis=None, keepdims=False):
    a = _as_cuda(a, "mean")
    n = _prod(a.shape[k] for k in _norm_axes(axis, a.ndim))
    return _reduce(a, axis, keepdims, "add") / (n if n else math.nan)  # mean = sum / n


def argmax(a, axis=None, keepdims=False):
    """Index of the first maximum along ``axis`` (over the flattened array when None)."""
    a = _as_cuda(a, "argmax")
    if a.size == 0:
        raise ValueError("attempt to get argmax of an empty sequence")
    if axis is None:
        src, m = a, a.size
        out_shape = (1,) * a.ndim if keepdims else ()
    else:
        axis = _norm_axes(axis, a.ndim)[0]
        order = [k for k in range(a.ndim) if k != axis] + [axis]
        src = a if axis == a.ndim - 1 else transpose(a, order)  # the searched axis last
        m = a.shape[axis]
        shape = list(a.shape)
        shape[axis] = 1
        out_shape = (
            tuple(shape) if keepdims else tuple(n for k, n in enumerate(a.shape) if k != axis)
        )
    out = CudaArray.empty(out_shape, np.int64)
    _argmax_kernel[_launch(out.size)](src._buf, out._buf, m)
    return out


# linear algebra and layout
def reshape(a, shape):
    return _as_cuda(a, "reshape").reshape(shape)


def transpose(a, axes=None):
    """A contiguous copy with the axes permuted (reversed when ``axes`` is None)."""
    a = _as_cuda(a, "transpose")
    axes = (
        tuple(range(a.ndim))[::-1]
        if axes is None
        else tuple(int(k) % builtins.max(a.ndim, 1) for k in axes)
    )
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"axes {axes} do not permute the {a.ndim} axes of the array")
    if axes == tuple(range(a.ndim)):
        return a.copy()
    shape = tuple(a.shape[k] for k in axes)
    src_strides = _contiguous_strides(a.shape)
    out = CudaArray.empty(shape, a.dtype)
    _copy(
        out._buf,
        0,
        _contiguous_strides(shape),
        a._buf,
        0,
        tuple(src_strides[k] for k in axes),
        shape,
    )
    return out


def swapaxes(a, axis1, axis2):
    return _as_cuda(a, "swapaxes").swapaxes(axis1, axis2)


def broadcast_to(a, shape):
    """``a`` repeated to ``shape`` (a materialised copy, unlike NumPy's read-only view)."""
    a = _operand(a, np.asarray(a).dtype if _is_scalar(a) else None)
    shape = _shape_tuple(shape)
    _check_broadcastable(a.shape, shape, "broadcast")
    out = CudaArray.empty(shape, a.dtype)
    _copy(
        out._buf,
        0,
        _contiguous_strides(shape),
        a._buf,
        0,
        _broadcast_strides(a.shape, shape),
        shape,
    )
    return out


def concatenate(arrays, axis=0):
    arrays = [_as_cuda(x, "concatenate") for x in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    ref = arrays[0]
    axis = _norm_axes(axis, ref.ndim)[0]
    for x in arrays:
        if x.ndim != ref.ndim or any(
            n != r for k, (n, r) in enumerate(zip(x.shape, ref.shape, strict=True)) if k != axis
        ):
            raise ValueError(
                f"concatenate: shape {x.shape} does not match {ref.shape} outside axis {axis}"
            )
    dtype = np.result_type(*[x.dtype for x in arrays])
    shape = list(ref.shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in arrays)
    out = CudaArray.empty(shape, dtype)
    strides = _contiguous_strides(out.shape)
    start = 0
    for x in arrays:
        x = x if x.dtype == dtype else x.astype(dtype)
        _copy(
            out._buf,
            start * strides[axis],
            strides,
            x._buf,
            0,
            _contiguous_strides(x.shape),
            x.shape,
        )
        start += x.shape[axis]
    return out


def stack(arrays, axis=0):
    arrays = [_as_cuda(x, "stack") for x in arrays]
    axis = _norm_axes(axis, arrays[0].ndim + 1)[0] if arrays else 0
    return concatenate([x.reshape(x.shape[:axis] + (1,) + x.shape[axis:]) for x in arrays], axis)


def pad(a, pad_width, mode="constant", constant_values=0):
    a = _as_cuda(a, "pad")
    if mode != "constant":
        raise ValueError(f"CUDA pad supports mode='constant' only, got {mode!r}")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad widths must be non-negative, got {pad_width}")
    shape = tuple(int(n + lo + hi) for n, (lo, hi) in zip(a.shape, widths, strict=True))
    out = full(shape, constant_values, a.dtype)
    strides = _contiguous_strides(shape)
    base = builtins.sum(int(lo) * s for (lo, _), s in zip(widths, strides, strict=True))
    _copy(out._buf, base, strides, a._buf, 0, _contiguous_strides(a.shape), a.shape)
    return out


def matmul(a, b):
    """NumPy's matmul: (..., M, K) @ (..., K, N) with broadcast batch dims; 1-D operands are
    vectors. A tiled shared-memory kernel; float32 and float64."""
    a, b = _as_cuda(a, "matmul"), _as_cuda(b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions")
    dtype = np.result_type(a.dtype, b.dtype)
    if dtype.kind != "f":
        raise TypeError(f"CUDA matmul supports float32 and float64, got {a.dtype} and {b.dtype}")
    a = a if a.dtype == dtype else a.astype(dtype)
    b = b if b.dtype == dtype else b.astype(dtype)
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    M, K = a2.shape[-2:]
    K2, N = b2.shape[-2:]
    if K != K2:
        raise ValueError(f"matmul: mismatch in the core dimension, shapes {a.shape} and {b.shape}")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    out = CudaArray.empty(batch + (M, N), dtype)
    nbatch = _prod(batch)
    if out.size:
        if K == 0:
            out.fill(0)
        else:
            sa = tuple(s * M * K for s in _broadcast_strides(a2.shape[:-2], batch))
            sb = tuple(s * K * N for s in _broadcast_strides(b2.shape[:-2], batch))
            dims, sa, sb = _dims(batch, sa, sb)
            if dtype not in _MATMUL_KERNELS:
                _MATMUL_KERNELS[dtype] = _make_matmul(numba.from_dtype(dtype))
            tiles = ((M + TILE - 1) // TILE) * ((N + TILE - 1) // TILE) * nbatch
            blocks = 1 if SIMULATOR else builtins.min(tiles, 65535)
            _MATMUL_KERNELS[dtype][Launch(blocks, (TILE, TILE), GPU_TILE**2)](
                a2._buf, b2._buf, out._buf, M, K, N, dims, sa, sb, nbatch
            )
    if a.ndim == 1:
        out = out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = out.reshape(out.shape[:-1])
    return out


def take_along_axis(arr, indices, axis):
    """out[..., i, ...] = arr[..., indices[..., i, ...], ...] along ``axis``."""
    arr, indices = _as_cuda(arr, "take_along_axis"), _as_cuda(indices, "take_along_axis")
    axis, shape, sarr, sind, axis_stride = _along_axis(arr, indices, axis)
    out = CudaArray.empty(shape, arr.dtype)
    if out.size:
        dims, sarr, sind = _dims(shape, sarr, sind)
        _take_along_kernel[_launch(out.size)](
            out._buf, arr._buf, sarr, indices._buf, sind, dims, arr.shape[axis], axis_stride
        )
    return out


def put_along_axis(arr, indices, values, axis):
    """arr[..., indices[..., i, ...], ...] = values, in place."""
    arr, indices = _as_cuda(arr, "put_along_axis"), _as_cuda(indices, "put_along_axis")
    axis, shape, sarr, sind, axis_stride = _along_axis(arr, indices, axis)
    values = _operand(values, arr.dtype)
    values = values if values.dtype == arr.dtype else values.astype(arr.dtype)
    _check_broadcastable(values.shape, shape, "put")
    n = _prod(shape)
    if n:
        dims, sarr, sind, sval = _dims(shape, sarr, sind, _broadcast_strides(values.shape, shape))
        _put_along_kernel[_launch(n)](
            arr._buf,
            sarr,
            indices._buf,
            sind,
            values._buf,
            sval,
            dims,
            n,
            arr.shape[axis],
            axis_stride,
        )


def _along_axis(arr, indices, axis):
    if indices.dtype.kind not in "iu":
        raise IndexError("indices must be an integer array")
    if indices.ndim != arr.ndim:
        raise ValueError("indices and arr must have the same number of dimensions")
    axis = _norm_axes(axis, arr.ndim)[0]
    base = list(arr.shape)
    base[axis] = 1
    shape = np.broadcast_shapes(tuple(base), indices.shape)
    # arr is read at its own strides, 0 on its broadcast axes and on `axis` (the index supplies it).
    strides = _contiguous_strides(arr.shape)
    sarr = [0 if n == 1 else s for n, s in zip(base, strides, strict=True)]
    axis_stride = strides[axis]
    return axis, shape, tuple(sarr), _broadcast_strides(indices.shape, shape), axis_stride


def add_at(target, index, values):
    """``target[index] += values`` with repeated indices accumulated (atomic adds, so the order of
    a float sum, and its last bits, are non-deterministic)."""
    target = _as_cuda(target, "add_at")
    flat = _flat_indices(target.shape, index)
    values = _operand(values, target.dtype)
    values = values if values.dtype == target.dtype else values.astype(target.dtype)
    _check_broadcastable(values.shape, flat.shape, "add")
    if flat.size:
        dims, sv = _dims(flat.shape, _broadcast_strides(values.shape, flat.shape))
        _scatter_add_kernel[_launch(flat.size)](
            target._buf, cuda.to_device(flat.ravel()), values._buf, dims, sv
        )
