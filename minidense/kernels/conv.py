"""conv2d and conv_transpose2d as im2col / col2im (``im2col.py``) plus one batched matmul, on the
CPU and on CUDA. Per group ``g``::

    conv2d:          out[n, g]   = W[g] (Cout/g, C/g·kH·kW) @ cols[n, g]
    grad of input:   gcols[n, g] = W[g]ᵀ @ grad_out[n, g],  then gx = col2im(gcols)
    grad of weight:  gW[g]       = Σ_n grad_out[n, g] @ cols[n, g]ᵀ

With stride 1 (and padding <= d·(k - 1)) the CPU backward takes a shorter road: the input
gradient is a convolution of ``grad_out`` with the kernel rotated by 180°, so one im2col of
``grad_out`` gives both gradients (``_conv2d_backward_stride1``).

On the CPU, a stride-1 forward on a large map (32x32 and up) skips the columns: one BLAS product
per kernel tap on the shifted, padded input, summed in place (``conv_shifted.py``).

``col2im`` is the adjoint of ``im2col`` (it sums every column entry back onto the pixel it came
from), so conv_transpose2d's forward is exactly conv2d's input gradient and its input gradient is
conv2d's forward: both ops share the same two kernels.

The matmul is NumPy's (BLAS sgemm / dgemm) on the CPU and the GPU layer's tiled kernel
(``minidense.gpu.matmul``) on CUDA. The batch goes through in chunks of samples whose columns fit a reused buffer (see
``conv_batch.CHUNK_BYTES``), and the backward pass recomputes columns instead of keeping kH·kW copies of
the input alive between forward and backward. On CUDA the whole batch is one chunk.

The arguments arrive checked (``minidense.ops.conv``): (h, w) pairs, matching shapes and dtypes.
"""

import numpy as np

from .. import gpu
from . import conv_shifted
from ._targets import is_device_array
from .conv_batch import (
    accumulate,
    add_bias,
    batched_matmul,
    bias_grad,
    chunks,
    contiguous,
    empty,
    rows,
    sum_over_batch,
    weight_grad,
    workspace,
    zeros,
)
from .geometry import as_pair, conv_transpose_output_size
from .im2col import Geometry, col2im, im2col, im2col_side_by_side

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward",
]  # fmt: skip


def _scratch(name, shape, like):
    """Scratch space for one chunk: a reused host buffer, or fresh device memory."""
    if is_device_array(like):
        return gpu.empty(shape, like.dtype)
    return workspace(name, shape, np.dtype(like.dtype))


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


def _side_by_side(x, geometry, nb, L, groups):
    """Whether a chunk's columns go side by side, (C·kH·kW, nb, L), for one matrix product over
    the chunk: on the host, for many small maps (Mask R-CNN's mask head: ~30 RoIs of 14×14).
    There one product instead of one per sample ran 1.5x faster; on large maps the per-sample
    products are as fast, and the side-by-side layout costs a transposing copy of the output."""
    return (not is_device_array(x) and groups == 1 and not geometry.pointwise and nb >= 8
            and L <= 400)  # fmt: skip


def _matmul_side_by_side(w, cols, out, scratch):
    """``out (nb, M, L) = w (M, K) @ cols (K, nb, L)`` as one product (host)."""
    K, nb, L = cols.shape
    tmp = workspace(scratch, (w.shape[0], nb, L), np.dtype(cols.dtype))
    np.matmul(w, cols.reshape(K, nb * L), out=tmp.reshape(w.shape[0], nb * L))
    out[...] = tmp.transpose(1, 0, 2)


# ----------------------------------------------------------------------------- conv2d


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W), weight (C_out, C/groups, kH, kW), bias (C_out,) -> (N, C_out, Ho, Wo)."""
    c_out = weight.shape[0]
    geo = Geometry(weight.shape[2:], stride, padding, dilation)
    Ho, Wo = geo.output_size(*x.shape[2:])
    x = contiguous(x)  # one compiled im2col per dtype, not one per stride pattern
    if conv_shifted.usable(x, geo, groups, (Ho, Wo)):  # large maps: no columns at all
        return conv_shifted.conv2d_forward_shifted(x, weight, bias, geo, (Ho, Wo))
    N, C = x.shape[:2]
    g, L = groups, Ho * Wo
    k = C // g * geo.kernel[0] * geo.kernel[1]  # one group's rows of the columns
    w = contiguous(weight).reshape(g, c_out // g, k)
    out = empty((N, c_out, Ho, Wo), like=x)
    for n0, n1 in chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        if _side_by_side(x, geo, nb, L, g):
            cols = im2col_side_by_side(x[n0:n1], geo, (Ho, Wo), _scratch("cols", (k, nb, L), x))
            _matmul_side_by_side(w[0], cols, out[n0:n1].reshape(nb, c_out, L), "out_t")
            continue
        cols = _columns(rows(x, n0, n1), geo, (Ho, Wo))
        batched_matmul(
            w, cols.reshape(nb * g, k, L), out=rows(out, n0, n1).reshape(nb * g, c_out // g, L)
        )
    return add_bias(out, bias)


def conv2d_backward(
    grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, needs=(True, True, True)
):
    """``(grad_input, grad_weight, grad_bias)`` of conv2d; those not in ``needs`` are None."""
    c_out = weight.shape[0]
    geo = Geometry(weight.shape[2:], stride, padding, dilation)
    Ho, Wo = geo.output_size(*x.shape[2:])
    needs = tuple(needs) + (True,) * (3 - len(needs))
    x = contiguous(x)
    go = contiguous(grad_out)
    back_padding = _transposed_padding(geo)
    if needs[0] and not is_device_array(x) and back_padding is not None:
        gx, gw = _conv2d_backward_stride1(go, x, weight, geo, back_padding, groups, c_out, needs[1])
        return gx, gw, (bias_grad(go) if needs[2] else None)
    N, C, H, W = x.shape
    g, L = groups, Ho * Wo
    k = C // g * geo.kernel[0] * geo.kernel[1]
    w = contiguous(weight).reshape(g, c_out // g, k)
    gx = empty(x.shape, like=x) if needs[0] else None
    gw = None
    for n0, n1 in chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        go_b = rows(go, n0, n1).reshape(nb * g, c_out // g, L)
        if needs[1]:
            # The columns are recomputed rather than saved: they are kH·kW times the input.
            cols = _columns(rows(x, n0, n1), geo, (Ho, Wo))
            gw = accumulate(gw, weight_grad(go_b, cols.reshape(nb * g, k, L), nb, g))
        if needs[0]:
            gcols = _scratch("gcols", (nb * g, k, L), x)
            batched_matmul(w, go_b, trans_a=True, out=gcols)
            col2im(gcols.reshape(nb, g * k, Ho, Wo), geo, C, (H, W), out=rows(gx, n0, n1))
    if needs[1] and gw is None:  # an empty batch: no chunk ran
        gw = zeros(weight.shape, like=x)
    gw = gw.reshape(weight.shape) if needs[1] else None
    gb = bias_grad(go) if needs[2] else None
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
    back = Geometry(geo.kernel, 1, back_padding, geo.dilation)
    wf = _flip_taps(np.ascontiguousarray(weight), g, og, cg).reshape(g, cg, k)
    gx = np.empty_like(x)
    gw = None
    for n0, n1 in chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        if _side_by_side(x, back, nb, L, g):
            cols = im2col_side_by_side(go[n0:n1], back, (H, W), _scratch("cols", (k, nb, L), x))
            _matmul_side_by_side(wf[0], cols, gx[n0:n1].reshape(nb, cg, L), "gx_t")
            if need_weight:  # (k, cg) = cols @ xᵀ over the chunk's nb·L positions at once
                xs = np.ascontiguousarray(x[n0:n1].reshape(nb, cg, L).transpose(1, 0, 2))
                part = cols.reshape(k, nb * L) @ xs.reshape(cg, nb * L).T
                gw = accumulate(gw, part.reshape(1, k, cg))
            continue
        cols = _columns(go[n0:n1], back, (H, W))
        cols = cols.reshape(nb * g, k, L)
        batched_matmul(wf, cols, out=gx[n0:n1].reshape(nb * g, cg, L))
        if need_weight:
            # (nb·g, k, cg) = cols @ xᵀ, the tall product (see conv_batch.weight_grad)
            part = batched_matmul(cols, x[n0:n1].reshape(nb * g, cg, L), trans_b=True)
            gw = accumulate(gw, sum_over_batch(part, nb, g))
    if need_weight and gw is None:  # an empty batch: no chunk ran
        gw = np.zeros(weight.shape, dtype=x.dtype)
    elif need_weight:
        # (g, og, kH, kW, cg) -> (g·og, cg, kH, kW), each kernel rotated back by 180°
        gw = gw.reshape(g, og, kh, kw, cg)[:, :, ::-1, ::-1].transpose(0, 1, 4, 2, 3)
        gw = np.ascontiguousarray(gw).reshape(g * og, cg, kh, kw)
    return gx, gw


# ----------------------------------------------------------------------------- conv_transpose2d


def _transposed_geometry(x, weight, stride, padding, output_padding, dilation):
    """The geometry of a transposed convolution and its output's (H, W)."""
    geo = Geometry(weight.shape[2:], stride, padding, dilation)
    out_pad = as_pair(output_padding)
    out_hw = tuple(
        conv_transpose_output_size(x.shape[2 + a], geo.kernel[a], geo.stride[a], geo.padding[a],
                                   geo.dilation[a], out_pad[a])
        for a in range(2)
    )  # fmt: skip
    return geo, out_hw


def conv_transpose2d_forward(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) -> (N, C_out, Hout, Wout).

    It is conv2d's input gradient: columns = Wᵀ · x, then col2im onto the (larger) output.
    """
    c_out = weight.shape[1] * groups
    geo, out_hw = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    N, C, H, W = x.shape
    g, L = groups, H * W
    k = c_out // g * geo.kernel[0] * geo.kernel[1]
    w = contiguous(weight).reshape(g, C // g, k)
    xs = contiguous(x)
    out = empty((N, c_out, *out_hw), like=x)
    for n0, n1 in chunks(N, g * k * L * x.dtype.itemsize, x):
        nb = n1 - n0
        cols = _scratch("cols", (nb * g, k, L), x)
        batched_matmul(w, rows(xs, n0, n1).reshape(nb * g, C // g, L), trans_a=True, out=cols)
        col2im(cols.reshape(nb, g * k, H, W), geo, c_out, out_hw, out=rows(out, n0, n1))
    return add_bias(out, bias)


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
    c_out = weight.shape[1] * groups
    geo, out_hw = _transposed_geometry(x, weight, stride, padding, output_padding, dilation)
    needs = tuple(needs) + (True,) * (3 - len(needs))
    N, C, H, W = x.shape
    g, L = groups, H * W
    k = c_out // g * geo.kernel[0] * geo.kernel[1]
    go = contiguous(grad_out)
    w = contiguous(weight).reshape(g, C // g, k)
    xs = contiguous(x)
    gx = empty(x.shape, like=x) if needs[0] else None
    gw = None
    if needs[0] or needs[1]:
        for n0, n1 in chunks(N, g * k * L * x.dtype.itemsize, x):
            nb = n1 - n0
            gcols = _columns(rows(go, n0, n1), geo, (H, W))
            gcols = gcols.reshape(nb * g, k, L)
            if needs[0]:
                batched_matmul(w, gcols, out=rows(gx, n0, n1).reshape(nb * g, C // g, L))
            if needs[1]:
                gw = accumulate(gw, weight_grad(rows(xs, n0, n1).reshape(nb * g, C // g, L),
                                                gcols, nb, g))  # fmt: skip
    if needs[1] and gw is None:  # an empty batch: no chunk ran
        gw = zeros(weight.shape, like=x)
    gw = gw.reshape(weight.shape) if needs[1] else None
    gb = bias_grad(go) if needs[2] else None
    return gx, gw, gb
