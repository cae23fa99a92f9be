"""Upsampling: ``interpolate`` (nearest, bilinear), ``bed_of_nails`` and ``bilinear_kernel``.

Three classic ways to make a feature map larger in a dense-prediction decoder:

- ``interpolate``: fixed resampling with PyTorch's exact coordinate rules;
- ``bed_of_nails``: zero insertion (each value at (i·f, j·f), zeros between), usually followed
  by a convolution that fills the holes - with the 3x3 tent filter it is bilinear interpolation
  with align_corners=True on the first 2H-1 rows and columns;
- ``conv_transpose2d`` initialised with ``bilinear_kernel`` (FCN): learnable, and equal to
  bilinear upsampling (align_corners=False) away from the border.

The kernels are in ``minidense.kernels.upsample``.
"""

from ..autograd import Function
from ..kernels import upsample as K
from ..kernels.upsample import bilinear_kernel
from ..tensor import Tensor

__all__ = ["interpolate", "bed_of_nails", "bilinear_kernel", "InterpolateFn", "BedOfNailsFn"]


class InterpolateFn(Function):
    """out = Σ_taps w·x[src]; grad_x[src] += w·grad_out (the same taps and weights)."""

    @staticmethod
    def forward(ctx, x, size, scale_factor, mode, align_corners):
        ctx.args = (size, scale_factor, mode, align_corners)
        ctx.in_shape = x.shape
        return K.interpolate_forward(x, size, scale_factor, mode, align_corners)

    @staticmethod
    def backward(ctx, grad_out):
        return K.interpolate_backward(grad_out, ctx.in_shape, *ctx.args), None, None, None, None


class BedOfNailsFn(Function):
    """out[i·f, j·f] = x[i, j], 0 elsewhere; grad_x = grad_out[::f, ::f]."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return K.bed_of_nails_forward(x, factor)

    @staticmethod
    def backward(ctx, grad_out):
        return K.bed_of_nails_backward(grad_out, ctx.factor), None


def _check_tensor(fn, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: input must be a minidense Tensor, got {type(t).__name__}")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize ``input`` (Tensor[N, C, H, W]) to ``size`` or by ``scale_factor`` (exactly one).

    Per axis, for output index dst: mode "nearest": src = min(floor(dst·s), in-1) (float32);
    "bilinear": align_corners=True maps corner pixel centres onto each other
    (src = dst·(in-1)/(out-1)), align_corners=False (the default) maps pixel areas
    (src = max((dst + 0.5)·s - 0.5, 0)). s = in/out with ``size`` but 1/scale_factor with
    ``scale_factor``, so the two differ when in·scale_factor is not an integer.
    Two shortcuts come first, as in PyTorch's CPU kernels: an axis whose size does not change
    (out = in) is copied as is (src = dst, both modes, whatever the scale_factor), and "nearest"
    with out = 2·in exactly takes src = dst // 2. So for width 5, "nearest" with
    scale_factor=1.1 gives columns [0 1 2 3 4] (the formula: [0 0 1 2 3]) and scale_factor=2.1
    (10 columns) gives [0 0 1 1 2 2 3 3 4 4] (the formula: [0 0 0 1 1 2 2 3 3 4]).
    Returns Tensor[N, C, Ho, Wo], Ho = size or floor(H·scale_factor).
    """
    _check_tensor("interpolate", input)
    return InterpolateFn.apply(input, size, scale_factor, mode, align_corners)


def bed_of_nails(input, factor=2):
    """Zero-insertion upsampling: Tensor[N, C, H, W] -> Tensor[N, C, H·f, W·f] with
    out[i·f, j·f] = input[i, j] and zeros everywhere else."""
    _check_tensor("bed_of_nails", input)
    return BedOfNailsFn.apply(input, factor)
