"""Shape and layout ops: reshape, permute, concat/stack, pad, indexing, dtype casts."""

import numpy as np

from .. import backend, checks
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from ..views import Step


class Reshape(Function):
    """Same elements, new shape; the gradient is reshaped back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None

    @staticmethod
    def view_step(shape):
        return Step("reshape", shape, Reshape)


class Permute(Function):
    """Reorder axes; the gradient takes the inverse permutation"""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.axes)), None

    @staticmethod
    def view_step(axes):
        return Step("permute", axes, Permute)


class Concat(Function):
    """Join along an axis; the gradient is split at the same offsets"""

    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return array_module(*xs).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        grads, start = [None], 0
        for n in ctx.sizes:
            index = [slice(None)] * g.ndim
            index[ctx.axis] = slice(start, start + n)
            grads.append(g[tuple(index)])
            start += n
        return tuple(grads)


class Pad(Function):
    """Constant padding; the gradient is the un-padded centre"""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        return array_module(x).pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(ctx.widths))
        return g[index], None, None


class GetItem(Function):
    """x[index]; repeated integer indices add their gradients up (scatter-add)"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.meta
        xp = array_module(g)
        gx = xp.zeros(shape, dtype=dtype)
        if _is_basic(index):
            gx[index] = g  # slices never repeat an element
        else:
            xp.add_at(gx, index, g)
        return gx, None

    @staticmethod
    def view_step(index):
        return (
            Step("index", index, GetItem) if _is_basic(index) else None
        )  # advanced indexing copies


class Cast(Function):
    """Change dtype; the gradient is cast back"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return (g.astype(ctx.in_dtype) if ctx.in_dtype.kind == "f" else None), None


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, slice | int | np.integer) for p in parts)


def _check_dim(dim, ndim, name="dim"):
    if isinstance(dim, bool | np.bool_) or not isinstance(dim, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__} ({dim!r})")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % ndim


def reshape(x, shape):
    """``x`` with a new shape (one entry may be -1)."""
    checks.tensor(x, "reshape")
    shape = checks.int_tuple(shape, "reshape", "shape")
    try:
        np.empty(x.shape, dtype=np.bool_).reshape(shape)  # validate without touching the data
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} into {shape}") from None
    return Reshape.apply(x, shape)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes ``start_dim..end_dim`` into one."""
    checks.tensor(x, "flatten")
    if x.ndim == 0:
        return reshape(x, (1,))
    s = _check_dim(start_dim, x.ndim, "start_dim")
    e = _check_dim(end_dim, x.ndim, "end_dim")
    if s > e:
        raise ValueError(f"flatten: start_dim ({start_dim}) comes after end_dim ({end_dim})")
    # The merged size, not -1: -1 is ambiguous when another axis is 0, e.g. (0, 3) from dim 1.
    merged = int(np.prod(x.shape[s : e + 1], dtype=np.int64))
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1 :])


def permute(x, axes):
    """Reorder the axes: output axis i is input axis ``axes[i]`` (negative counts from the end)."""
    checks.tensor(x, "permute")
    given = checks.int_tuple(axes, "permute", "axes")
    norm = tuple(a % x.ndim if -x.ndim <= a < x.ndim else -1 for a in given) if x.ndim else given
    if sorted(norm) != list(range(x.ndim)):
        raise ValueError(f"permute: axes must be a permutation of 0..{x.ndim - 1}, got {given}")
    return Permute.apply(x, norm)


def transpose(x, dim0=-2, dim1=-1):
    """Swap two axes."""
    checks.tensor(x, "transpose")
    axes = list(range(x.ndim))
    d0, d1 = _check_dim(dim0, x.ndim, "dim0"), _check_dim(dim1, x.ndim, "dim1")
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, tuple(axes))


def unsqueeze(x, dim):
    checks.tensor(x, "unsqueeze")
    dim = _check_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    checks.tensor(x, "squeeze")
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dim = _check_dim(dim, x.ndim)
    return reshape(x, x.shape[:dim] + x.shape[dim + 1 :]) if x.shape[dim] == 1 else x


def concat(tensors, axis=0):
    """Join tensors along ``axis``; all other axes must agree."""
    tensors = _tensor_list(tensors, "concat")
    ref = tensors[0]
    axis = _check_dim(axis, ref.ndim, "axis")
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, ref.shape, strict=True)) if k != axis
        ):
            raise ValueError(
                f"concat: tensor {i} has shape {t.shape}, which does not match tensor 0's "
                f"{ref.shape} outside axis {axis}"
            )
    floats = {t.dtype for t in tensors if t.dtype.kind == "f"}
    if len(floats) == 1:  # integers join the float dtype, as in a + b (NumPy would give float64)
        tensors = [t if t.dtype.kind == "f" else t.astype(*floats) for t in tensors]
    return Concat.apply(axis, *tensors)


cat = concat


def stack(tensors, axis=0):
    """Stack equal-shaped tensors along a new axis; composite: unsqueeze + concat."""
    tensors = _tensor_list(tensors, "stack")
    if tensors:
        _check_dim(axis, tensors[0].ndim + 1, "axis")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(
                f"stack: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}"
            )
    return concat([unsqueeze(t, axis) for t in tensors], axis)


def pad(x, pad, value=0.0):
    """Constant padding, PyTorch's convention: ``pad=(left, right, top, bottom, ...)`` starts at the
    last axis. E.g. ``pad(x, (1, 1, 2, 2))`` on ``(N, C, H, W)`` gives ``(N, C, H+4, W+2)``."""
    checks.tensor(x, "pad")
    pad = checks.int_tuple(pad, "pad", "pad")
    value = checks.number(value, "pad", "value") if x.dtype.kind == "f" else value
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad must have an even length of at most 2*ndim={2 * x.ndim}, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad widths must be non-negative, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, tuple(widths), value)


def _tensor_list(tensors, fn):
    """``tensors`` as a non-empty list of Tensors, or an error naming the first bad entry."""
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(
            f"{fn}: tensors must be a list or tuple of Tensors, got {type(tensors).__name__}"
        )
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{fn}: tensors must hold at least one tensor, got an empty list")
    for i, t in enumerate(tensors):
        checks.tensor(t, fn, f"tensors[{i}]")
    return tensors


def _raw_index(index):
    """Tensors inside an index become their arrays (they carry no gradient)."""
    if isinstance(index, Tensor):
        return index.numpy()
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index):
    """NumPy indexing: ints, slices, None, Ellipsis, integer and bool arrays."""
    index = _raw_index(index)
    if _is_basic(index):
        # A trailing ... keeps a full integer index a 0-d view (NumPy would return a scalar copy).
        parts = index if isinstance(index, tuple) else (index,)
        index = parts if any(p is Ellipsis for p in parts) else parts + (Ellipsis,)
    try:
        np.empty(x.shape, dtype=np.bool_)[index]  # validate the index on a cheap stand-in
    except IndexError as e:
        raise IndexError(f"index {index!r} does not fit a tensor of shape {x.shape}: {e}") from None
    return GetItem.apply(x, index)


def to_device(x, device):
    """Move ``x`` to ``device`` ("cpu" or "cuda")."""
    if not isinstance(device, str) or device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == x.device:
        return x
    if device == "cuda":
        backend.get("cuda")  # raises "no CUDA GPU found: ..." before anything moves
    return ToDevice.apply(x, device)


class ToDevice(Function):
    """Copy to another device; the gradient is copied back to where the input lives"""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = backend.device_of(x)
        return backend.move(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.move(g, ctx.source), None
