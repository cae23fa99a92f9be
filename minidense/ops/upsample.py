"""Upsampling: ``interpolate`` (nearest, bilinear), ``bed_of_nails`` and ``bilinear_kernel``.

Three classic ways to make a feature map larger in a dense-prediction decoder:

- ``interpolate``: fixed resampling with PyTorch's exact coordinate rules;
- ``bed_of_nails``: zero insertion (each value at (i·f, j·f), zeros between), usually followed
  by a convolution that fills the holes - with the 3x3 tent filter it is bilinear interpolation
  with align_corners=True on the first 2H-1 rows and columns;
- ``conv_transpose2d`` initialised with ``bilinear_kernel`` (FCN): learnable, and equal to
  bilinear upsampling (align_corners=False) away from the border.

The kernels are in ``minidense.kernels.upsample`` and ``bed_of_nails``; the arguments are
checked here.
"""

import math
import numbers

import numpy as np

from .. import checks
from ..autograd import Function
from ..kernels import bed_of_nails as KB
from ..kernels import upsample as KU

__all__ = ["interpolate", "bed_of_nails", "bilinear_kernel", "InterpolateFn", "BedOfNailsFn"]

MODES = ("nearest", "bilinear")


class InterpolateFn(Function):
    """out = Σ_taps w·x[src]; grad_x[src] += w·grad_out (the same taps and weights)."""

    @staticmethod
    def forward(ctx, x, size, scale_factor, mode, align_corners):
        checks.float_array(x, "interpolate", "input")
        _check_interpolate(x.shape[2:], size, scale_factor, mode, align_corners)
        ctx.args = (size, scale_factor, mode, align_corners)
        ctx.in_shape = x.shape
        return KU.interpolate_forward(x, size, scale_factor, mode, align_corners)

    @staticmethod
    def backward(ctx, grad_out):
        return KU.interpolate_backward(grad_out, ctx.in_shape, *ctx.args), None, None, None, None


class BedOfNailsFn(Function):
    """out[i·f, j·f] = x[i, j], 0 elsewhere; grad_x = grad_out[::f, ::f]."""

    @staticmethod
    def forward(ctx, x, factor):
        checks.float_array(x, "bed_of_nails", "input")
        if not isinstance(factor, int | np.integer) or isinstance(factor, bool) or factor < 1:
            raise ValueError(f"bed_of_nails: factor must be a positive int, got {factor!r}")
        ctx.factor = int(factor)
        return KB.bed_of_nails_forward(x, ctx.factor)

    @staticmethod
    def backward(ctx, grad_out):
        return KB.bed_of_nails_backward(grad_out, ctx.factor), None


def _positive_pair(value, name, kind):
    vals = tuple(value) if isinstance(value, tuple | list) else (value, value)
    ok = len(vals) == 2 and all(
        isinstance(v, kind) and not isinstance(v, bool) and v > 0 and math.isfinite(v) for v in vals
    )
    if not ok:
        what = "int" if kind is numbers.Integral else "number"
        raise ValueError(
            f"interpolate: {name} must be a positive {what} or a pair of them, all finite, got {value!r}"
        )
    return vals


def _check_interpolate(in_hw, size, scale_factor, mode, align_corners):
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {MODES}, got {mode!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(
            f"interpolate: align_corners can only be set with mode='bilinear', got mode={mode!r}"
        )
    if align_corners is not None and not isinstance(align_corners, bool | np.bool_):
        raise TypeError(
            f"interpolate: align_corners must be None, True or False, got {align_corners!r}"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "interpolate: give exactly one of size and scale_factor, got "
            f"size={size!r}, scale_factor={scale_factor!r}"
        )
    if min(in_hw) < 1:  # no source pixel to sample: the kernels would read outside the input
        raise ValueError(
            f"interpolate: input's spatial size (H, W) must be > 0, got {in_hw[0]}x{in_hw[1]}"
        )
    if size is not None:
        _positive_pair(size, "size", numbers.Integral)
        return
    factors = _positive_pair(scale_factor, "scale_factor", numbers.Real)
    out_hw = tuple(int(math.floor(n * float(f))) for n, f in zip(in_hw, factors, strict=True))
    if min(out_hw) < 1:
        raise ValueError(
            f"interpolate: scale_factor {scale_factor!r} shrinks {tuple(in_hw)} to an empty "
            f"output {out_hw}"
        )


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
    checks.tensor(input, "interpolate")
    return InterpolateFn.apply(input, size, scale_factor, mode, align_corners)


def bed_of_nails(input, factor=2):
    """Zero-insertion upsampling: Tensor[N, C, H, W] -> Tensor[N, C, H·f, W·f] with
    out[i·f, j·f] = input[i, j] and zeros everywhere else."""
    checks.tensor(input, "bed_of_nails")
    return BedOfNailsFn.apply(input, factor)


def bilinear_kernel(in_channels, out_channels=None, kernel_size=4, dtype=np.float32):
    """conv_transpose2d weight (in_channels, out_channels, k, k) that upsamples bilinearly.

    FCN's initialisation: channel i -> channel i gets the separable tent filter
    ``(1 - |r - center| / factor)·(1 - |c - center| / factor)`` with ``factor = ceil(k / 2)`` and
    ``center = factor - 1`` (odd k) or ``factor - 0.5`` (even k); all other pairs are zero. With
    k = 2·f, stride f and padding f/2 (e.g. k 4, stride 2, padding 1) it reproduces
    interpolate(scale_factor=f, mode="bilinear", align_corners=False) away from the border.
    """
    out_channels = in_channels if out_channels is None else out_channels
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                    ("kernel_size", kernel_size)):  # fmt: skip
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise ValueError(f"bilinear_kernel: {name} must be a positive int, got {v!r}")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    r = np.arange(kernel_size)
    tent = 1 - np.abs(r - center) / factor
    filt = np.outer(tent, tent)
    weight = np.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=dtype)
    for i in range(min(in_channels, out_channels)):
        weight[i, i] = filt
    return weight
