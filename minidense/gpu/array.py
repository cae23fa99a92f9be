"""``CudaArray``: the one device-array type of minidense. Kernels take it and return it, the CUDA
backend computes on it and a ``Tensor`` on "cuda" holds it, so nothing converts between types.

It is a C-contiguous flat Numba device buffer plus a shape. ``reshape`` and contiguous slices
are views of that buffer (as in NumPy); anything else is a copy. A kernel launched with a
CudaArray sees a Numba device array of its shape: a GPU reads ``__cuda_array_interface__``, the
simulator asks ``to_device`` (``simulator_compat.KernelArgument``).

This module gives the type its storage, its array protocol and its views. NumPy's operators and
methods (``a + b``, ``x.sum(axis=1)``, ``x[idx]``, ``x.astype``) are installed by the CUDA backend
(``minidense.backend.cuda.methods``), which implements them on its kernels: the kernels below the
backend need the type, not its arithmetic.
"""

import numpy as np
from numba import cuda

from . import layout
from .simulator_compat import KernelArgument

__all__ = ["CudaArray", "is_device_array", "empty", "zeros", "to_device", "asarray", "to_host"]


class CudaArray(KernelArgument):
    """An n-dimensional array on the GPU: a C-contiguous flat Numba device buffer plus a shape.

    It deliberately has no ``__array__``: ``np.asarray(cuda_array)`` fails instead of copying
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
        shape = shape_tuple(shape)
        return cls(cuda.device_array(layout.prod(shape), dtype=np.dtype(dtype)), shape)

    @classmethod
    def from_host(cls, array):
        array = np.asarray(array, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"only numeric arrays can go to the GPU, got dtype {array.dtype}")
        return cls(cuda.to_device(array.reshape(-1)), array.shape)

    @classmethod
    def from_device(cls, dev):
        """Wrap a raw Numba device array: a view when it is C-contiguous, else a contiguous copy
        (made by Numba's own strided assignment)."""
        shape = tuple(dev.shape)
        if dev.is_c_contiguous():
            return cls(dev.reshape(layout.prod(shape)), shape)
        out = cls.empty(shape, dev.dtype)
        out.dev[...] = dev
        return out

    # ---------------------------------------------------------------- array protocol
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return layout.prod(self.shape)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def strides(self):
        """Byte strides, as NumPy reports them (always C-contiguous)."""
        return tuple(s * self.dtype.itemsize for s in layout.contiguous_strides(self.shape))

    @property
    def flags(self):
        return {"C_CONTIGUOUS": True, "F_CONTIGUOUS": self.ndim <= 1, "OWNDATA": True}

    def is_c_contiguous(self):
        return True

    def is_f_contiguous(self):
        return sum(n > 1 for n in self.shape) <= 1

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

    # ---------------------------------------------------------------- views and copies
    def reshape(self, *shape, order="C"):
        if order != "C":
            raise ValueError("CudaArray.reshape supports only order='C'")
        shape = (
            shape[0] if len(shape) == 1 and not isinstance(shape[0], int | np.integer) else shape
        )
        return CudaArray(self._buf, resolve_shape(self.shape, shape), self._owner)

    def ravel(self):
        return self.reshape(-1)

    def flatten(self):
        return self.reshape(-1).copy()  # a copy, as NumPy's

    def copy(self):
        out = CudaArray.empty(self.shape, self.dtype)
        if self.size:
            out._buf.copy_to_device(self._buf)  # device to device, no kernel
        return out

    def fill(self, value):
        layout.fill(self._buf, value)


def shape_tuple(shape):
    if isinstance(shape, int | np.integer):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def resolve_shape(old, shape):
    """``shape`` (one entry may be -1) for an array of shape ``old``, checked as NumPy does."""
    shape = list(shape_tuple(shape))
    size = layout.prod(old)
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = layout.prod(n for n in shape if n != -1)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    if layout.prod(shape) != size or min(shape, default=0) < 0:
        raise ValueError(f"cannot reshape array of size {size} into shape {tuple(shape)}")
    return tuple(shape)


def is_device_array(a):
    """True for a CUDA array (a CudaArray or a raw Numba device array, real or simulated), False
    for NumPy arrays."""
    # numba.cuda.is_cuda_array is missing under the simulator, so duck-type instead.
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def empty(shape, dtype):
    """An uninitialised CudaArray."""
    return CudaArray.empty(shape, dtype)


def zeros(shape, dtype):
    """A zero-filled CudaArray, filled on the device (no host round trip)."""
    out = CudaArray.empty(shape, dtype)
    out.fill(0)
    return out


def to_device(array):
    """A CudaArray copy of a host array."""
    return CudaArray.from_host(array)


def asarray(a):
    """``a`` as a CudaArray: CudaArrays pass, raw Numba device arrays are wrapped (a view when
    contiguous), host data is copied over."""
    if isinstance(a, CudaArray):
        return a
    if is_device_array(a):
        return CudaArray.from_device(a)
    return CudaArray.from_host(np.asarray(a))


def to_host(a):
    """A NumPy copy of a CUDA array (NumPy arrays pass through)."""
    return a if isinstance(a, np.ndarray) else a.copy_to_host()
