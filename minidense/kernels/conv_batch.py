"""What conv2d and conv_transpose2d share (``conv.py``): the batched matmul over groups, the bias
and its gradient, and the CPU's batching - chunks of samples and reused buffers.
"""

import math
import threading

import numpy as np
from numba import cuda

from .. import gpu
from ._targets import is_device_array, launch

__all__ = [
    "contiguous", "batched_matmul", "add_bias", "bias_grad", "sum_over_batch", "weight_grad",
    "CHUNK_BYTES",
    "workspace", "chunks", "rows", "empty", "zeros", "accumulate",
]  # fmt: skip


# ----------------------------------------------------------------------------- small CUDA helpers


@cuda.jit
def _add_channel_bias_cuda(out, bias):
    """out (N, C, L) += bias[c]."""
    N, C, L = out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * L, step):
        out[e // (C * L), (e // L) % C, e % L] += bias[(e // L) % C]


@cuda.jit
def _sum_channels_cuda(grad, out):
    """out[c] = Σ_{n, l} grad[n, c, l]: one thread per channel (deterministic order).

    A sum of N·L terms (thousands) in the gradient's dtype, so compensated (Kahan): ``lost``
    carries the low bits each addition rounds away, and the error stays a few units in the last
    place of float32, as a float64 sum's would, without float64 arithmetic. Once the sum is
    infinite there is nothing to compensate (inf - inf would turn it into NaN).
    """
    N, C, L = grad.shape
    zero = grad.dtype.type(0)
    start, step = cuda.grid(1), cuda.gridsize(1)
    for c in range(start, C, step):
        acc = zero
        lost = zero
        for n in range(N):
            for l in range(L):
                y = grad[n, c, l] - lost
                t = acc + y
                lost = (t - acc) - y if math.isfinite(t) else zero
                acc = t
        out[c] = acc


@cuda.jit
def _sum_leading_cuda(parts, out):
    """out[r] = Σ_b parts[b, r] (sums the per-sample weight gradients)."""
    B, R = parts.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for r in range(start, R, step):
        acc = parts[0, r]
        for b in range(1, B):
            acc += parts[b, r]
        out[r] = acc


def contiguous(a):
    """A C-contiguous version of a host array (no copy when it already is); device arrays
    (CudaArrays) always are."""
    return a if is_device_array(a) else np.ascontiguousarray(a)


def batched_matmul(a, b, trans_a=False, trans_b=False, out=None):
    """``op(a) @ op(b)`` for 3-D operands, on either target (``op``: a transpose when asked).

    The batches may differ, as (g, M, K) with (N·g, K, L): out[z] then uses a[z % g] and b[z].
    That is NumPy's broadcasting once the longer batch is viewed as (N, g), so it is one batched
    product, BLAS's on the host and the GPU layer's tiled kernel on the device.
    """
    shape = None
    if a.shape[0] != b.shape[0]:
        if a.shape[0] < b.shape[0]:
            b = b.reshape(-1, a.shape[0], *b.shape[1:])
        else:
            a = a.reshape(-1, b.shape[0], *a.shape[1:])
        m = a.shape[-1] if trans_a else a.shape[-2]
        n = b.shape[-2] if trans_b else b.shape[-1]
        shape = (-1, min(a.shape[-3], b.shape[-3]), m, n)
    out4 = None if out is None or shape is None else out.reshape(shape)
    if is_device_array(a):
        res = gpu.matmul(a, b, trans_a, trans_b, out=out4 if shape else out)
    else:
        a_ = a.swapaxes(-1, -2) if trans_a else a
        b_ = b.swapaxes(-1, -2) if trans_b else b
        res = np.matmul(a_, b_, out=out4 if shape else out)
    if out is not None:
        return out
    return res.reshape(-1, *res.shape[2:]) if shape else res


def add_bias(out, bias):
    """out (N, C, H, W) += bias (C,), in place; returns out."""
    if bias is None:
        return out
    if is_device_array(out):
        flat = out.reshape(out.shape[0], out.shape[1], out.shape[2] * out.shape[3])
        _add_channel_bias_cuda[launch(flat.size)](flat, bias)
    else:
        out += bias.reshape(1, -1, 1, 1)
    return out


def bias_grad(grad_out):
    """Σ over N, H, W of grad_out (N, C, H, W) -> (C,)."""
    if is_device_array(grad_out):
        N, C, H, W = grad_out.shape
        flat = grad_out.reshape(N, C, H * W)
        out = gpu.empty(C, grad_out.dtype)
        _sum_channels_cuda[launch(out.size)](flat, out)
        return out
    return grad_out.sum(axis=(0, 2, 3))


def sum_over_batch(parts, n, g):
    """(N·g, M, K) per-sample products -> (g, M, K) summed over the N samples."""
    if is_device_array(parts):
        per_sample = parts.reshape(n, parts.size // n)
        out = gpu.empty(per_sample.shape[1], parts.dtype)
        _sum_leading_cuda[launch(out.size)](per_sample, out)
        return out.reshape(g, parts.shape[1], parts.shape[2])
    return parts.reshape(n, g, parts.shape[1], parts.shape[2]).sum(axis=0)


def weight_grad(a, cols, n, g):
    """Σ over the n samples of ``a[z] @ cols[z]ᵀ``: (n·g, M, L) and (n·g, K, L) -> (g, M, K),
    a convolution's weight gradient (M: a group's channels, K: its column rows, L: positions).

    On the CPU it is computed as ``cols @ aᵀ`` (K×M per sample) and transposed once summed:
    OpenBLAS runs that tall product 1.3-1.9x faster than the wide one whose few rows are a
    layer's channels (measured on the U-Net's and Mask R-CNN's layers, 2 threads).
    """
    if is_device_array(a):
        return sum_over_batch(batched_matmul(a, cols, trans_b=True), n, g)
    summed = sum_over_batch(batched_matmul(cols, a, trans_b=True), n, g)  # (g, K, M)
    return np.ascontiguousarray(summed.swapaxes(1, 2))


# ----------------------------------------------------------------------------- batching on the CPU

# On the CPU the batch goes through in chunks of samples whose columns fit in a reused buffer of
# about this many bytes: the columns stay in cache between im2col and the matmul, and a reused
# buffer costs no page faults (a fresh 40 MB array costs about as much to fault in as im2col
# takes to fill it). On the GPU the whole batch is one chunk.
CHUNK_BYTES = 8 << 20
_workspaces = threading.local()


def workspace(name, shape, dtype):
    """A reusable host buffer of ``shape`` (contents undefined), one per name and thread."""
    size = math.prod(shape)
    buf = getattr(_workspaces, name, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        if buf.nbytes <= 4 * CHUNK_BYTES:  # keep only modest buffers alive between calls
            setattr(_workspaces, name, buf)
    return buf[:size].reshape(shape)


def chunks(n, bytes_per_sample, like, budget=None):
    """Sample ranges ``(n0, n1)`` covering ``range(n)``, each about ``budget`` bytes (default
    ``CHUNK_BYTES``): none for an empty batch (the callers then fill a weight gradient with
    ``zeros``)."""
    if n == 0:
        return []
    if is_device_array(like):
        return [(0, n)]
    step = max(1, (CHUNK_BYTES if budget is None else budget) // max(1, bytes_per_sample))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def rows(a, n0, n1):
    """a[n0:n1] without slicing when the range is the whole array (device arrays included)."""
    return a if (n0 == 0 and n1 == a.shape[0]) else a[n0:n1]


def empty(shape, like):
    if is_device_array(like):
        return gpu.empty(shape, like.dtype)
    return np.empty(shape, dtype=like.dtype)


def zeros(shape, like):
    """Zeros on ``like``'s target: an empty batch's weight gradient."""
    if is_device_array(like):
        return gpu.zeros(shape, like.dtype)
    return np.zeros(shape, dtype=like.dtype)


def accumulate(total, part):
    if total is None:
        return part
    total += part  # host only: device batches are a single chunk
    return total
