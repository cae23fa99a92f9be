"""Convolutions: ``conv2d`` and ``conv_transpose2d`` (PyTorch names, arguments and semantics).

Both lower to im2col / col2im plus one batched matmul (``minidense.kernels.conv``). The transposed
convolution is the adjoint of the convolution: its forward is conv2d's input gradient and its input
gradient is conv2d's forward, so e.g. a stride-2 ``conv_transpose2d`` doubles the size that a
stride-2 ``conv2d`` halves.
"""

import numpy as np

from .. import checks
from ..autograd import Function
from ..kernels import conv as K
from ..kernels.geometry import conv_output_size, conv_transpose_output_size

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFn", "ConvTranspose2dFn"]


class Conv2dFn(Function):
    """out = W ⋆ x + b;  grad_x = col2im(Wᵀ·grad),  grad_W = grad·colsᵀ,  grad_b = Σ grad."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        _check_conv_args("conv2d", x, weight, bias, groups, transposed=False)
        stride, padding, dilation = _conv_geometry(x, weight, stride, padding, dilation)
        ctx.args = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)  # the columns are recomputed: they are kH·kW times x
        return K.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        gx, gw, gb = K.conv2d_backward(
            grad_out, x, weight, *ctx.args, needs=ctx.needs_input_grad[:3]
        )
        return gx, gw, gb, None, None, None, None


class ConvTranspose2dFn(Function):
    """out = col2im(Wᵀ·x) + b;  grad_x = W·im2col(grad),  grad_W = x·im2col(grad)ᵀ."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        _check_conv_args("conv_transpose2d", x, weight, bias, groups, transposed=True)
        stride, padding, output_padding, dilation = _transposed_geometry(
            x, weight, stride, padding, output_padding, dilation
        )
        ctx.args = (stride, padding, output_padding, groups, dilation)
        ctx.save_for_backward(x, weight)
        return K.conv_transpose2d_forward(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        gx, gw, gb = K.conv_transpose2d_backward(
            grad_out, x, weight, *ctx.args, needs=ctx.needs_input_grad[:3]
        )
        return gx, gw, gb, None, None, None, None, None


def _check_conv_args(op, x, weight, bias, groups, transposed):
    checks.float_array(x, op, "input")
    checks.float_array(weight, op, "weight")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} differs from input dtype {x.dtype}")
    if not isinstance(groups, int | np.integer) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    C = x.shape[1]
    if C == 0:  # PyTorch returns an empty map here whatever the weight says
        raise ValueError(f"{op}: input {tuple(x.shape)} has no channels; expected at least one")
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
        checks.float_array(bias, op, "bias", ndim=1)
        if bias.shape[0] != c_out or bias.dtype != x.dtype:
            raise ValueError(
                f"{op}: bias must have shape ({c_out},) and dtype {x.dtype}, "
                f"got {tuple(bias.shape)} {bias.dtype}"
            )
    return c_out


def _conv_geometry(x, weight, stride, padding, dilation, op="conv2d"):
    """Checked (h, w) pairs of stride, padding and dilation; the output must not be empty."""
    k = tuple(weight.shape[2:])
    s = checks.pair(stride, op, "stride", 1)
    p = checks.pair(padding, op, "padding", 0)
    d = checks.pair(dilation, op, "dilation", 1)
    H, W = x.shape[2:]
    per_axis = zip(k, s, p, d, strict=True)
    Ho, Wo = (conv_output_size(n, *a) for n, a in zip((H, W), per_axis, strict=True))
    if Ho < 1 or Wo < 1:
        (kh, kw), (dh, dw), (ph, pw) = k, d, p
        raise ValueError(
            f"{op}: kernel ({kh}x{kw}, dilated to {dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}) is "
            f"larger than the padded input ({H + 2 * ph}x{W + 2 * pw})"
        )
    return s, p, d


def _transposed_geometry(x, weight, stride, padding, output_padding, dilation):
    """Checked (h, w) pairs of stride, padding, output_padding and dilation."""
    op = "conv_transpose2d"
    k = tuple(weight.shape[2:])
    s = checks.pair(stride, op, "stride", 1)
    p = checks.pair(padding, op, "padding", 0)
    d = checks.pair(dilation, op, "dilation", 1)
    out_pad = checks.pair(output_padding, op, "output_padding", 0)
    for a, name in enumerate("hw"):
        if out_pad[a] >= max(s[a], d[a]):
            raise ValueError(
                f"{op}: output_padding ({out_pad[a]} along {name}) must be smaller than stride "
                f"({s[a]}) or dilation ({d[a]})"
            )
    out_hw = tuple(
        conv_transpose_output_size(x.shape[2 + a], k[a], s[a], p[a], d[a], out_pad[a])
        for a in range(2)
    )
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty; reduce padding")
    return s, p, out_pad, d


def _check_tensors(fn, **tensors):
    """input and weight must be Tensors, bias a Tensor or None; weight and bias in input's dtype."""
    for name, t in tensors.items():
        if t is not None or name != "bias":
            checks.tensor(t, fn, name)
        if name != "input" and t is not None:
            checks.same_dtype(t, tensors["input"], fn, name)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch).

    Args:
        input (Tensor[N, C_in, H, W]); weight (Tensor[C_out, C_in/groups, kH, kW]);
        bias (Tensor[C_out] or None); stride, padding, dilation: int or (h, w); groups: int.
    Returns:
        Tensor[N, C_out, Ho, Wo] with Ho = (H + 2·padding - dilation·(kH - 1) - 1) // stride + 1.
    """
    _check_tensors("conv2d", input=input, weight=weight, bias=bias)
    return Conv2dFn.apply(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """2-D transposed convolution (the gradient of conv2d with respect to its input).

    Args:
        input (Tensor[N, C_in, H, W]); weight (Tensor[C_in, C_out/groups, kH, kW]);
        bias (Tensor[C_out] or None); output_padding: extra rows/columns on the bottom/right,
        smaller than stride or dilation (it picks one of the sizes that a strided conv2d maps
        to the same input size).
    Returns:
        Tensor[N, C_out, Hout, Wout], Hout = (H - 1)·stride - 2·padding
        + dilation·(kH - 1) + output_padding + 1; e.g. kernel 4, stride 2, padding 1 doubles H.
    """
    _check_tensors("conv_transpose2d", input=input, weight=weight, bias=bias)
    return ConvTranspose2dFn.apply(
        input, weight, bias, stride, padding, output_padding, groups, dilation
    )
