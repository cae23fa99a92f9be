"""conv2d and conv_transpose2d as im2col / col2im plus one batched matmul, on CPU and CUDA.

The columns of an input ``x (N, C, H, W)`` for a ``kH x kW`` kernel are
``cols (N, C·kH·kW, Ho·Wo)``: row ``(c, i, j)`` holds, for every output position ``(oh, ow)``,
the input pixel that kernel tap ``(i, j)`` of channel ``c`` sees there (0 in the padding).
Then, per group ``g``::

    conv2d:          out[n, g]   = W[g] (Cout/g, C/g·kH·kW) @ cols[n, g]
    grad of input:   gcols[n, g] = W[g]ᵀ @ grad_out[n, g],  then gx = col2im(gcols)
    grad of weight:  gW[g]       = Σ_n grad_out[n, g] @ cols[n, g]ᵀ

With stride 1 (and padding <= d·(k - 1)) the CPU backward takes a shorter road: the input
gradient is a convolution of ``grad_out`` with the kernel rotated by 180°, so one im2col of
``grad_out`` gives both gradients (``_conv2d_backward_stride1``).

``col2im`` is the adjoint of ``im2col`` (it sums every column entry back onto the pixel it came
from), so conv_transpose2d's forward is exactly conv2d's input gradient and its input gradient is
conv2d's forward: both ops share the same two kernels.

Worked example: x 1x1x4x4, 3x3 kernel, padding 1, stride 1 -> cols 1x9x4x4; row (0, 0, 0) is x
shifted down-right by one pixel with a zero top row and left column.

CPU: im2col is a gather through a per-geometry table of source positions, parallel over (n, c)
planes; col2im is parallel over planes too, each prange iteration owning one plane of its
output, so the scatter-add inside a plane is race-free. The matmul is NumPy's (BLAS sgemm /
dgemm). The batch goes through in chunks of samples whose columns fit a reused buffer (see
``CHUNK_BYTES``), and the backward pass recomputes columns instead of keeping kH·kW copies of
the input alive between forward and backward. CUDA: one thread per column entry for im2col, a
gather (one thread per input pixel, summing the taps that read it) for col2im - deterministic, no
atomics - and the GPU layer's tiled matmul (``minidense.gpu.matmul``); the whole batch is one
chunk.
"""

import functools
import math
import threading

import numba
import numpy as np
from numba import cuda, prange

from .. import gpu
from ._targets import cpu_kernel, dual, is_device_array, launch, unravel_nchw_cuda

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "conv_output_size",
    "conv_transpose_output_size",
    "im2col",
    "col2im",
    "pair",
    "launch",
    "check_float_array",
]


# ----------------------------------------------------------------------------- launch / arguments


def pair(value, name, op, minimum=0):
    """``value`` as a pair of ints ``(h, w)``; an int means both. Raises naming ``name``."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return out


def check_float_array(a, name, op, ndim=4):
    """Raise unless ``a`` is a float32/float64 array (host or device) with ``ndim`` dimensions."""
    if not (isinstance(a, np.ndarray) or is_device_array(a)):
        raise TypeError(f"{op}: {name} must be an array, got {type(a).__name__}")
    if np.dtype(a.dtype) not in (np.float32, np.float64):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
    if len(a.shape) != ndim:
        layout = {4: " (N, C, H, W)", 1: " (C,)"}.get(ndim, "")
        raise ValueError(f"{op}: {name} must be {ndim}-D{layout}, got shape {tuple(a.shape)}")


def _check_same_target(op, **arrays):
    on_device = {name: is_device_array(a) for name, a in arrays.items() if a is not None}
    if len(set(on_device.values())) > 1:
        raise ValueError(f"{op}: arrays must all be on the CPU or all on the GPU, got {on_device}")


def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, dilation, output_padding):
    """Output length of a transposed convolution along one axis (PyTorch's formula)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


class _Geometry:
    """Kernel, stride, padding, dilation of one convolution, as (h, w) pairs."""

    def __init__(self, op, kernel, stride, padding, dilation):
        self.kernel = kernel
        self.stride = pair(stride, "stride", op, 1)
        self.padding = pair(padding, "padding", op, 0)
        self.dilation = pair(dilation, "dilation", op, 1)

    def args(self):
        """The flat scalar arguments of the im2col / col2im kernels."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
        )
        return kh, kw, sh, sw, ph, pw, dh, dw

    @property
    def pointwise(self):
        """A 1×1 kernel, stride 1, no padding: the input is its own columns."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def output_size(self, h, w):
        per_axis = zip(self.kernel, self.stride, self.padding, self.dilation, strict=True)
        return tuple(conv_output_size(n, *p) for n, p in zip((h, w), per_axis, strict=True))


# ----------------------------------------------------------------------------- per-tap index math


def _tap_source(o, k, stride, pad, dil):
    """Input coordinate read by output position ``o`` through kernel tap ``k``."""
    return o * stride - pad + k * dil


def _tap_output(i, k, stride, pad, dil, out_size):
    """Inverse of ``_tap_source``: the output position whose tap ``k`` reads input ``i``, or -1."""
    t = i + pad - k * dil
    if t < 0 or t % stride != 0:
        return -1
    o = t // stride
    return o if o < out_size else -1


def _tap_range(k, stride, pad, dil, in_size, out_size):
    """The outputs ``[lo, hi)`` whose tap ``k`` lands inside the input (the rest read padding)."""
    t = pad - k * dil
    lo = 0 if t <= 0 else (t + stride - 1) // stride
    t = in_size - 1 + pad - k * dil
    hi = 0 if t < 0 else min(t // stride + 1, out_size)
    return lo, max(lo, hi)


tap_source_cpu, tap_source_cuda = dual(_tap_source)
tap_output_cpu, tap_output_cuda = dual(_tap_output)
# CPU only: the CUDA col2im gathers per input pixel with tap_output instead.
tap_range_cpu = numba.njit(inline="always", cache=True)(_tap_range)


# -------------------------------------------------------------------------- im2col / col2im, CPU


@numba.njit(cache=True)
def _im2col_sources_cpu(H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    """(kH·kW, Ho·Wo) int32: the flat input position ``h·W + w`` that tap ``t`` reads at output
    position ``p``, or -1 where it reads padding."""
    src = np.empty((kh * kw, Ho * Wo), np.int32)
    for i in range(kh):
        for j in range(kw):
            for oh in range(Ho):
                ih = tap_source_cpu(oh, i, sh, ph, dh)
                for ow in range(Wo):
                    iw = tap_source_cpu(ow, j, sw, pw, dw)
                    inside = 0 <= ih < H and 0 <= iw < W
                    src[i * kw + j, oh * Wo + ow] = ih * W + iw if inside else -1
    return src


@functools.lru_cache(maxsize=64)
def _im2col_sources(H, W, Ho, Wo, args):
    """The im2col gather table of one geometry, built once (a net has a handful of them)."""
    return _im2col_sources_cpu(H, W, Ho, Wo, *args)


@cpu_kernel
def im2col_cpu(x, cols, src):
    """x (N, C, H, W) C-contiguous -> cols (N, C·T, L), T = kH·kW taps, L = Ho·Wo positions.

    A gather through the table ``src (T, L)`` of ``_im2col_sources``: every entry is one load
    from the (cached) input plane, with no per-tap slicing, which dominated on the small maps of
    a U-Net's lower levels (measured 2-3x faster there, and faster on large maps too).
    """
    N, C, H, W = x.shape
    T, L = src.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c].reshape(H * W)
        for t in range(T):
            row = cols[n, c * T + t]
            s = src[t]
            for p in range(L):
                k = s[p]
                row[p] = plane[k] if k >= 0 else 0


@cpu_kernel
def col2im_cpu(cols, x, kh, kw, sh, sw, ph, pw, dh, dw):
    """cols (N, C·kH·kW, Ho, Wo) -> x (N, C, H, W), summing every entry onto its source pixel.

    Race-free: prange iteration ``(n, c)`` owns plane ``x[n, c]`` and only it adds into it.
    The adds run over 1-D views indexed from 0, so LLVM sees no negative index to wrap.
    """
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[2], cols.shape[3]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        plane[:] = 0
        for i in range(kh):
            oh_lo, oh_hi = tap_range_cpu(i, sh, ph, dh, H, Ho)
            ih0 = tap_source_cpu(oh_lo, i, sh, ph, dh)
            for j in range(kw):
                ow_lo, ow_hi = tap_range_cpu(j, sw, pw, dw, W, Wo)
                iw0 = tap_source_cpu(ow_lo, j, sw, pw, dw)
                m = ow_hi - ow_lo
                if oh_hi <= oh_lo or m <= 0:
                    continue
                src = cols[n, (c * kh + i) * kw + j, oh_lo:oh_hi, ow_lo:ow_hi]
                rows = plane[ih0 : ih0 + (oh_hi - oh_lo - 1) * sh + 1 : sh]
                for r in range(oh_hi - oh_lo):
                    s = src[r]
                    if sw == 1:
                        d = rows[r, iw0 : iw0 + m]
                        for t in range(m):
                            d[t] += s[t]
                    else:
                        d = rows[r, iw0 : iw0 + (m - 1) * sw + 1 : sw]
                        for t in range(m):
                            d[t] += s[t]


# ------------------------------------------------------------------------- im2col / col2im, CUDA


@cuda.jit
def im2col_cuda(x, cols, kh, kw, sh, sw, ph, pw, dh, dw):
    """One thread per column entry (n, c, i, j, oh, ow); grid-stride loop."""
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[2], cols.shape[3]
    total = N * C * kh * kw * Ho * Wo
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, total, step):
        ow = e % Wo
        oh = (e // Wo) % Ho
        row = (e // (Wo * Ho)) % (C * kh * kw)
        n = e // (Wo * Ho * C * kh * kw)
        j = row % kw
        i = (row // kw) % kh
        c = row // (kw * kh)
        ih = tap_source_cuda(oh, i, sh, ph, dh)
        iw = tap_source_cuda(ow, j, sw, pw, dw)
        if 0 <= ih < H and 0 <= iw < W:
            cols[n, row, oh, ow] = x[n, c, ih, iw]
        else:
            cols[n, row, oh, ow] = 0


@cuda.jit
def col2im_cuda(cols, x, kh, kw, sh, sw, ph, pw, dh, dw):
    """One thread per input pixel, gathering the column entries that read it (no atomics)."""
    N, C, H, W = x.shape
    Ho, Wo = cols.shape[2], cols.shape[3]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for e in range(start, N * C * H * W, step):
        n, c, ih, iw = unravel_nchw_cuda(e, C, H, W)
        acc = x.dtype.type(0)  # at most kh·kw terms: the input's dtype is accurate enough
        for i in range(kh):
            oh = tap_output_cuda(ih, i, sh, ph, dh, Ho)
            if oh < 0:
                continue
            for j in range(kw):
                ow = tap_output_cuda(iw, j, sw, pw, dw, Wo)
                if ow >= 0:
                    acc += cols[n, (c * kh + i) * kw + j, oh, ow]
        x[n, c, ih, iw] = acc


def im2col(x, geometry, out_hw, out=None):
    """Columns ``(N, C·kH·kW, Ho, Wo)`` of ``x (N, C, H, W)`` (host or device, same as ``x``).

    The conv wrappers skip it for a pointwise geometry (``_columns``), whose columns are ``x``."""
    N, C = x.shape[:2]
    kh, kw = geometry.kernel
    shape = (N, C * kh * kw, *out_hw)
    if is_device_array(x):
        cols = gpu.empty(shape, x.dtype) if out is None else out
        im2col_cuda[launch(math.prod(shape))](x, cols, *geometry.args())
    else:
        cols = np.empty(shape, dtype=x.dtype) if out is None else out
        (H, W), L = x.shape[2:], out_hw[0] * out_hw[1]
        src = _im2col_sources(H, W, *out_hw, geometry.args())
        im2col_cpu(np.ascontiguousarray(x), cols.reshape(N, C * kh * kw, L), src)
    return cols


def col2im(cols, geometry, channels, in_hw, out=None):
    """Sum columns ``(N, C·kH·kW, Ho, Wo)`` back onto ``(N, C, H, W)`` (the adjoint of im2col)."""
    shape = (cols.shape[0], channels, *in_hw)
    if is_device_array(cols):
        x = gpu.empty(shape, cols.dtype) if out is None else out
        col2im_cuda[launch(math.prod(shape))](cols, x, *geometry.args())
    else:
        x = np.empty(shape, dtype=cols.dtype) if out is None else out
        col2im_cpu(cols, x, *geometry.args())
    return x


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


def _matmul(a, b, trans_a=False, trans_b=False, out=None):
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


def _add_bias(out, bias):
    """out (N, C, H, W) += bias (C,), in place; returns out."""
    if bias is None:
        return out
    if is_device_array(out):
        flat = out.reshape(out.shape[0], out.shape[1], out.shape[2] * out.shape[3])
        _add_channel_bias_cuda[launch(flat.size)](flat, bias)
    else:
        out += bias.reshape(1, -1, 1, 1)
    return out


def _bias_grad(grad_out):
    """Σ over N, H, W of grad_out (N, C, H, W) -> (C,)."""
    if is_device_array(grad_out):
        N, C, H, W = grad_out.shape
        flat = grad_out.reshape(N, C, H * W)
        out = gpu.empty(C, grad_out.dtype)
        _sum_channels_cuda[launch(out.size)](flat, out)
        return out
    return grad_out.sum(axis=(0, 2, 3))


def _sum_over_batch(parts, n, g):
    """(N·g, M, K) per-sample products -> (g, M, K) summed over the N samples."""
    if is_device_array(parts):
        rows = parts.reshape(n, parts.size // n)
        out = gpu.empty(rows.shape[1], parts.dtype)
        _sum_leading_cuda[launch(out.size)](rows, out)
        return out.reshape(g, parts.shape[1], parts.shape[2])
    return parts.reshape(n, g, parts.shape[1], parts.shape[2]).sum(axis=0)


# ----------------------------------------------------------------------------- validation


def _check_conv_args(op, x, weight, bias, groups, transposed):
    check_float_array(x, "input", op)
    check_float_array(weight, "weight", op)
    _check_same_target(op, input=x, weight=weight, bias=bias)
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} differs from input dtype {x.dtype}")
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    C = x.shape[1]
    if C % groups:
        raise ValueError(f"{op}: input channels ({C}) must be divisible by groups ({groups})")
    if transposed:
        # weight (C_in, C_out/groups, kH, kW)
        if weight.shape[0] != C:
            raise ValueError(
                f"{op}: weight (C_in, C_out/groups, kH, kW) = {tuple(weight.shape)} expects "
                f"{weight.shape[0]} input channels, but input has {C}"
            )
        c_out = weight.shape[1] * groups
    else:
        # weight (C_out, C_in/groups, kH, kW)
        c_out = weight.shape[0]
        if c_out % groups:
            raise ValueError(
                f"{op}: output channels (weight.shape[0] = {c_out}) must be divisible by "
                f"groups ({groups})"
            )
        if weight.shape[1] * groups != C:
            hint = (
                "; it looks like (N, H, W, C): use x.permute(0, 3, 1, 2)"
                if x.shape[3] == weight.shape[1] * groups
                else ""
            )
            raise ValueError(
                f"{op}: weight (C_out, C_in/groups, kH, kW) = {tuple(weight.shape)} expects "
                f"{weight.shape[1] * groups} input channels with groups={groups}, but input has {C}"
                f"{hint}"
            )
    if bias is not None:
        check_float_array(bias, "bias", op, ndim=1)
        if bias.shape[0] != c_out or bias.dtype != x.dtype:
            raise ValueError(
                f"{op}: bias must have shape ({c_out},) and dtype {x.dtype}, "
                f"got {tuple(bias.shape)} {bias.dtype}"
            )
    return c_out


def _conv_geometry(x, weight, stride, padding, dilation, op="conv2d"):
    geo = _Geometry(op, tuple(weight.shape[2:]), stride, padding, dilation)
    H, W = x.shape[2:]
    Ho, Wo = geo.output_size(H, W)
    if Ho < 1 or Wo < 1:
        (kh, kw), (dh, dw), (ph, pw) = geo.kernel, geo.dilation, geo.padding
        raise ValueError(
            f"{op}: kernel ({kh}x{kw}, dilated to {dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}) is "
            f"larger than the padded input ({H + 2 * ph}x{W + 2 * pw})"
        )
    return geo, (Ho, Wo)


def _transposed_geometry(x, weight, stride, padding, output_padding, dilation):
    op = "conv_transpose2d"
    geo = _Geometry(op, tuple(weight.shape[2:]), stride, padding, dilation)
    out_pad = pair(output_padding, "output_padding", op, 0)
    for a, name in enumerate("hw"):
        if out_pad[a] >= max(geo.stride[a], geo.dilation[a]):
            raise ValueError(
                f"{op}: output_padding ({out_pad[a]} along {name}) must be smaller than stride "
                f"({geo.stride[a]}) or dilation ({geo.dilation[a]})"
            )
    out_hw = tuple(
        conv_transpose_output_size(x.shape[2 + a], geo.kernel[a], geo.stride[a], geo.padding[a],
                                   geo.dilation[a], out_pad[a])
        for a in range(2)
    )  # fmt: skip
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty; reduce padding")
    return geo, out_hw


# ----------------------------------------------------------------------------- batching on the CPU

# On the CPU the batch goes through in chunks of samples whose columns fit in a reused buffer of
# about this many bytes: the columns stay in cache between im2col and the matmul, and a reused
# buffer costs no page faults (a fresh 40 MB array costs about as much to fault in as im2col
# takes to fill it). On the GPU the whole batch is one chunk.
CHUNK_BYTES = 8 << 20
_workspaces = threading.local()


def _workspace(name, shape, dtype):
    """A reusable host buffer of ``shape`` (contents undefined), one per name and thread."""
    size = math.prod(shape)
    buf = getattr(_workspaces, name, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        if buf.nbytes <= 4 * CHUNK_BYTES:  # keep only modest buffers alive between calls
            setattr(_workspaces, name, buf)
    return buf[:size].reshape(shape)


def _chunks(n, bytes_per_sample, like):
    """Sample ranges ``(n0, n1)`` covering ``range(n)``: none for an empty batch (the callers
    then fill a weight gradient with ``_zeros``)."""
    if n == 0:
        return []
    if is_device_array(like):
        return [(0, n)]
    step = max(1, CHUNK_BYTES // max(1, bytes_per_sample))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _rows(a, n0, n1):
    """a[n0:n1] without slicing when the range is the whole array (device arrays included)."""
    return a if (n0 == 0 and n1 == a.shape[0]) else a[n0:n1]


def _empty(shape, like):
    if is_device_array(like):
        return gpu.empty(shape, like.dtype)
    return np.empty(shape, dtype=like.dtype)


def _zeros(shape, like):
    """Zeros on ``like``'s target: an empty batch's weight gradient."""
    if is_device_array(like):
        return gpu.zeros(shape, like.dtype)
    return np.zeros(shape, dtype=like.dtype)


def _scratch(name, shape, like):
    """Scratch space for one chunk: a reused host buffer, or fresh device memory."""
    if is_device_array(like):
        return gpu.empty(shape, like.dtype)
    return _workspace(name, shape, np.dtype(like.dtype))


def _columns(x, geometry, out_hw):
    """im2col of one chunk into the "cols" scratch. A pointwise conv (1×1, stride 1, no padding)
    has ``x`` itself as its columns: no copy and no scratch (on a GPU that would be a device
    allocation per call, never written); ``x`` must not be written through the result."""
    if geometry.pointwise:
        return x
    kh, kw = geometry.kernel
    return im2col(
        x, geometry, out_hw, _scratch("cols", (x.shape[0], x.shape[1] * kh * kw, *out_hw), x)
    )


def _accumulate(total, part):
    if total is None:
        return part
    total += part  # host only: device batches are a single chunk
    return total


# ----------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W), weight (C_out, C/groups, kH, kW), bias (C_out,) -> (N, C_out, Ho, Wo)."""
    c_out = _check_conv_args("conv2d", x, weight, bias, groups, transposed=False)
    geo, (Ho, Wo) = _conv_geometry(x, weight, stride, padding, dilation)
    x = contiguous(x)  # one compiled im2col per dtype, not one per stride pattern
    N, C = x.shape[:2]
    g, L = groups, Ho * Wo
    k = C // g * geo.kernel[0] * geo.kernel[1]  # one group's rows of the columns
    w = contiguous(weight).reshape(g, c_out // g, k)
    out = _empty((N, c_out, Ho, Wo), like=x)
    for n0, n1 in _chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        cols = _columns(_rows(x, n0, n1), geo, (Ho, Wo))
        _matmul(
            w, cols.reshape(nb * g, k, L), out=_rows(out, n0, n1).reshape(nb * g, c_out // g, L)
        )
    return _add_bias(out, bias)


def conv2d_backward(
    grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, needs=(True, True, True)
):
    """``(grad_input, grad_weight, grad_bias)`` of conv2d; those not in ``needs`` are None."""
    c_out = _check_conv_args("conv2d", x, weight, None, groups, transposed=False)
    geo, (Ho, Wo) = _conv_geometry(x, weight, stride, padding, dilation)
    needs = tuple(needs) + (True,) * (3 - len(needs))
    x = contiguous(x)
    go = contiguous(grad_out)
    back_padding = _transposed_padding(geo)
    if needs[0] and not is_device_array(x) and back_padding is not None:
        gx, gw = _conv2d_backward_stride1(go, x, weight, geo, back_padding, groups, c_out, needs[1])
        return gx, gw, (_bias_grad(go) if needs[2] else None)
    N, C, H, W = x.shape
    g, L = groups, Ho * Wo
    k = C // g * geo.kernel[0] * geo.kernel[1]
    w = contiguous(weight).reshape(g, c_out // g, k)
    gx = _empty(x.shape, like=x) if needs[0] else None
    gw = None
    for n0, n1 in _chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        go_b = _rows(go, n0, n1).reshape(nb * g, c_out // g, L)
        if needs[1]:
            # The columns are recomputed rather than saved: they are kH·kW times the input.
            cols = _columns(_rows(x, n0, n1), geo, (Ho, Wo))
            part = _matmul(go_b, cols.reshape(nb * g, k, L), trans_b=True)
            gw = _accumulate(gw, _sum_over_batch(part, nb, g))
        if needs[0]:
            gcols = _scratch("gcols", (nb * g, k, L), x)
            _matmul(w, go_b, trans_a=True, out=gcols)
            col2im(gcols.reshape(nb, g * k, Ho, Wo), geo, C, (H, W), out=_rows(gx, n0, n1))
    if needs[1] and gw is None:  # an empty batch: no chunk ran
        gw = _zeros(weight.shape, like=x)
    gw = gw.reshape(weight.shape) if needs[1] else None
    gb = _bias_grad(go) if needs[2] else None
    return gx, gw, gb


def _transposed_padding(geo):
    """The padding ``d·(k - 1) - p`` under which conv2d's input gradient is a plain convolution
    of ``grad_out``, or None when it is not one (stride > 1, or padding > d·(k - 1))."""
    pads = tuple(
        d * (k - 1) - p for k, p, d in zip(geo.kernel, geo.padding, geo.dilation, strict=True)
    )
    return pads if geo.stride == (1, 1) and min(pads) >= 0 else None


def _flip_taps(w, g, a, b):
    """(g·a, b, kH, kW) -> (g·b, a, kH, kW): swap the two channel axes in each group and rotate
    every kernel by 180°. Its own inverse (with a and b swapped)."""
    kh, kw = w.shape[2:]
    w = w.reshape(g, a, b, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(w).reshape(g * b, a, kh, kw)


def _conv2d_backward_stride1(go, x, weight, geo, back_padding, groups, c_out, need_weight):
    """conv2d's input and weight gradients from the columns of ``grad_out`` alone (CPU).

    With stride 1 the input gradient is itself a convolution: ``grad_out`` correlated with the
    kernel rotated by 180° and its channel axes swapped, under padding ``d·(k - 1) - p``. The same
    columns give the weight gradient (``x @ colsᵀ``, the taps rotated back). So one im2col
    replaces the general path's recomputed columns of ``x``, its tall ``(C·kH·kW, L)`` product
    and its col2im scatter: the U-Net's 3×3 convs run their backward about 20% faster.
    """
    N, C, H, W = x.shape
    kh, kw = geo.kernel
    g, L = groups, H * W
    cg, og = C // g, c_out // g
    k = og * kh * kw  # one group's rows of the columns of grad_out
    back = _Geometry("conv2d", geo.kernel, 1, back_padding, geo.dilation)
    wf = _flip_taps(np.ascontiguousarray(weight), g, og, cg).reshape(g, cg, k)
    gx = np.empty_like(x)
    gw = None
    for n0, n1 in _chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        cols = _columns(go[n0:n1], back, (H, W))
        cols = cols.reshape(nb * g, k, L)
        _matmul(wf, cols, out=gx[n0:n1].reshape(nb * g, cg, L))
        if need_weight:
            part = _matmul(x[n0:n1].reshape(nb * g, cg, L), cols, trans_b=True)  # (nb·g, cg, k)
            gw = _accumulate(gw, _sum_over_batch(part, nb, g))
    if need_weight and gw is None:  # an empty batch: no chunk ran
        gw = np.zeros(weight.shape, dtype=x.dtype)
    elif need_weight:
        gw = _flip_taps(gw.reshape(g * cg, og, kh, kw), g, cg, og)
    return gx, gw


# ----------------------------------------------------------------------------- conv_transpose2d


def conv_transpose2d_forward(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) -> (N, C_out, Hout, Wout).

    It is conv2d's input gradient: columns = Wᵀ · x, then col2im onto the (larger) output.
    """
    c_out = _check_conv_args("conv_transpose2d", x, weight, bias, groups, transposed=True)
    geo, out_hw = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    N, C, H, W = x.shape
    g, L = groups, H * W
    k = c_out // g * geo.kernel[0] * geo.kernel[1]
    w = contiguous(weight).reshape(g, C // g, k)
    xs = contiguous(x)
    out = _empty((N, c_out, *out_hw), like=x)
    for n0, n1 in _chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        cols = _scratch("cols", (nb * g, k, L), x)
        _matmul(w, _rows(xs, n0, n1).reshape(nb * g, C // g, L), trans_a=True, out=cols)
        col2im(cols.reshape(nb, g * k, H, W), geo, c_out, out_hw, out=_rows(out, n0, n1))
    return _add_bias(out, bias)


def conv_transpose2d_backward(
    grad_out,
    x,
    weight,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    needs=(True, True, True),
):
    """Gradients of conv_transpose2d: grad_input is conv2d(grad_out, weight) (im2col + matmul)."""
    c_out = _check_conv_args("conv_transpose2d", x, weight, None, groups, transposed=True)
    geo, out_hw = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    needs = tuple(needs) + (True,) * (3 - len(needs))
    N, C, H, W = x.shape
    g, L = groups, H * W
    k = c_out // g * geo.kernel[0] * geo.kernel[1]
    go = contiguous(grad_out)
    w = contiguous(weight).reshape(g, C // g, k)
    xs = contiguous(x)
    gx = _empty(x.shape, like=x) if needs[0] else None
    gw = None
    if needs[0] or needs[1]:
        for n0, n1 in _chunks(N, g * k * L * x.dtype.itemsize, x):
            nb = n1 - n0
            gcols = _columns(_rows(go, n0, n1), geo, (H, W))
            gcols = gcols.reshape(nb * g, k, L)
            if needs[0]:
                _matmul(w, gcols, out=_rows(gx, n0, n1).reshape(nb * g, C // g, L))
            if needs[1]:
                part = _matmul(_rows(xs, n0, n1).reshape(nb * g, C // g, L), gcols, trans_b=True)
                gw = _accumulate(gw, _sum_over_batch(part, nb, g))
    if needs[1] and gw is None:  # an empty batch: no chunk ran
        gw = _zeros(weight.shape, like=x)
    gw = gw.reshape(weight.shape) if needs[1] else None
    gb = _bias_grad(go) if needs[2] else None
    return gx, gw, gb
