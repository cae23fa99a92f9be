"""Convolutions: ``conv2d`` and ``conv_transpose2d`` (PyTorch names, arguments and semantics).

Both lower to im2col / col2im plus one batched matmul (``minidense.kernels.conv``). The transposed
convolution is the adjoint of the convolution: its forward is conv2d's input gradient and its input
gradient is conv2d's forward, so e.g. a stride-2 ``conv_transpose2d`` doubles the size that a
stride-2 ``conv2d`` halves.
"""

from .. import checks
from ..autograd import Function
from ..kernels import conv as K
from ..tensor import Tensor

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFn", "ConvTranspose2dFn"]


class Conv2dFn(Function):
    """out = W ⋆ x + b;  grad_x = col2im(Wᵀ·grad),  grad_W = grad·colsᵀ,  grad_b = Σ grad."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
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


def _check_tensors(fn, **tensors):
    checks.tensor(tensors["input"], fn)
    for name, t in tensors.items():
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a minidense Tensor, got {type(t).__name__}")
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
