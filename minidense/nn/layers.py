"""Layers: thin Modules over ``minidense.functional`` with PyTorch's names and arguments."""

import math
import numbers

import numpy as np

from .. import checks
from .. import functional as F
from ..tensor import default_generator
from . import init
from ._inputs import check_input
from .module import Module, Parameter

__all__ = [
    "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "GroupNorm", "ReLU", "LeakyReLU",
    "Sigmoid", "Tanh", "Identity", "Dropout", "MaxPool2d", "AvgPool2d", "MaxUnpool2d", "Upsample",
]  # fmt: skip


def _pair(v, name, minimum=None):
    """``v`` as ``(h, w)`` ints; ``minimum`` (if given) is checked here, at construction, so a
    bad layer fails where it is built rather than at its first forward."""
    is_int = lambda i: isinstance(i, int | np.integer) and not isinstance(i, bool)  # noqa: E731
    v = (v, v) if is_int(v) else tuple(v) if isinstance(v, tuple | list | np.ndarray) else v
    if not (isinstance(v, tuple) and len(v) == 2 and all(map(is_int, v))):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if minimum is not None and min(v) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {v!r}")
    return tuple(int(i) for i in v)


def _positive_int(v, name):
    if not isinstance(v, int | np.integer) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _number(v, name, lo=-math.inf, hi=math.inf, lo_open=False):
    """A finite real in [lo, hi] (``lo_open``: (lo, hi]); TypeError for non-numbers."""
    return checks.number(v, "", name, lo=lo, hi=hi, lo_open=lo_open)


def _flag(v, name):
    if not isinstance(v, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def _check_pool_args(kernel_size, stride, padding, dilation=1):
    """Pool layers check their window at construction (the functional form checks it again)."""
    _pair(kernel_size, "kernel_size", 1)
    if stride is not None:
        _pair(stride, "stride", 1)
    _pair(padding, "padding", 0)
    _pair(dilation, "dilation", 1)


class _ConvNd(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, transposed, output_padding=0):  # fmt: skip
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels")
        out_channels = _positive_int(out_channels, "out_channels")
        groups = _positive_int(groups, "groups")
        _flag(bias, "bias")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                f"divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        self.output_padding = _pair(output_padding, "output_padding", 0)
        self.groups = groups
        shape = (
            (in_channels, out_channels // groups)
            if transposed
            else (out_channels, in_channels // groups)
        ) + self.kernel_size
        self.weight = Parameter(np.zeros(shape, np.float32))
        # He initialisation suits the ReLU nets built here (PyTorch's default is a scaled uniform).
        init.kaiming_normal_(self.weight, mode="fan_out" if transposed else "fan_in")
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution: ``(N, C_in, H, W)`` → ``(N, C_out, H', W')``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, transposed=False)  # fmt: skip

    def forward(self, x):
        check_input(self, x, f"(N, {self.in_channels}, H, W)", 4, axis=1, size=self.in_channels)
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose2d(_ConvNd):
    """Transposed ("fractionally strided") convolution: the gradient of Conv2d w.r.t. its input."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, transposed=True, output_padding=output_padding)  # fmt: skip

    def forward(self, x):
        check_input(self, x, f"(N, {self.in_channels}, H, W)", 4, axis=1, size=self.in_channels)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation)  # fmt: skip


class Linear(Module):
    """y = x·Wᵀ + b, W of shape ``(out_features, in_features)``."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        _flag(bias, "bias")
        self.weight = Parameter(np.zeros((out_features, in_features), np.float32))
        init.kaiming_uniform_(self.weight, nonlinearity="linear")
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None

    def forward(self, x):
        check_input(self, x, f"(..., {self.in_features})", min_ndim=1, axis=-1,
                    size=self.in_features)  # fmt: skip
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class BatchNorm2d(Module):
    """Batch normalisation of ``(N, C, H, W)`` with running statistics for evaluation."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        _number(eps, "eps", 0, lo_open=True)
        _number(momentum, "momentum", 0, 1)
        _flag(affine, "affine")
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.weight.requires_grad = self.bias.requires_grad = affine
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x):
        return self._run(F.batch_norm, x)

    def fuses_with(self, following):
        """Whether ``Sequential`` may run this layer and ``following`` as one op
        (:meth:`forward_fused`): a plain ReLU after a batch norm whose forward is this class's."""
        return type(following) is ReLU and type(self).forward is BatchNorm2d.forward

    def forward_fused(self, x):
        """``relu(self(x))`` in one op (``F.batch_norm_relu``): the ReLU runs inside batch
        norm's kernels, with no passes of its own over the activations."""
        return self._run(F.batch_norm_relu, x)

    def _run(self, fn, x):
        check_input(self, x, f"(N, {self.num_features}, H, W)", 4, axis=1, size=self.num_features)
        return fn(x, self._buffers["running_mean"], self._buffers["running_var"], self.weight,
                  self.bias, self.training, self.momentum, self.eps)  # fmt: skip

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class GroupNorm(Module):
    """Group normalisation (batch-size independent, good for detection heads)."""

    def __init__(self, num_groups, num_channels, eps=1e-5):
        super().__init__()
        _positive_int(num_groups, "num_groups")
        _positive_int(num_channels, "num_channels")
        _number(eps, "eps", 0, lo_open=True)
        if num_channels % num_groups:
            raise ValueError(f"num_groups ({num_groups}) must divide num_channels ({num_channels})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = Parameter(np.ones(num_channels, np.float32))
        self.bias = Parameter(np.zeros(num_channels, np.float32))

    def forward(self, x):
        check_input(self, x, f"(N, {self.num_channels}, ...)", min_ndim=2, axis=1,
                    size=self.num_channels)  # fmt: skip
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}"


class _Activation(Module):
    fn = None
    floating = True  # which dtypes it takes: ReLU also takes integers, as F.relu

    def forward(self, x):
        return type(self).fn(check_input(self, x, "(any shape)", floating=self.floating))


class ReLU(_Activation):
    fn = staticmethod(F.relu)
    floating = False


class Sigmoid(_Activation):
    fn = staticmethod(F.sigmoid)


class Tanh(_Activation):
    fn = staticmethod(F.tanh)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = _number(negative_slope, "negative_slope")

    def forward(self, x):
        return F.leaky_relu(check_input(self, x, "(any shape)"), self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Identity(Module):
    def forward(self, x):
        return x


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1−p)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool):
            raise TypeError(f"dropout probability p must be a number in [0, 1), got {p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        check_input(self, x, "(any shape)")
        if not self.training or self.p == 0:
            return x
        keep = default_generator().random(x.shape) >= self.p
        return x * (keep / (1 - self.p)).astype(x.dtype)

    def extra_repr(self):
        return f"p={self.p}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):  # fmt: skip
        super().__init__()
        _check_pool_args(kernel_size, stride, padding, dilation)
        _flag(return_indices, "return_indices")
        _flag(ceil_mode, "ceil_mode")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        check_input(self, x, "(N, C, H, W)", 4)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)  # fmt: skip

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class AvgPool2d(Module):
    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True
    ):
        super().__init__()
        _check_pool_args(kernel_size, stride, padding)
        _flag(ceil_mode, "ceil_mode")
        _flag(count_include_pad, "count_include_pad")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        check_input(self, x, "(N, C, H, W)", 4)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)  # fmt: skip

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class MaxUnpool2d(Module):
    """Inverse of MaxPool2d(return_indices=True): values back at their remembered positions."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        _check_pool_args(kernel_size, stride, padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        check_input(self, x, "(N, C, H, W)", 4)
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"Upsample: give exactly one of size and scale_factor, got size={size!r}, "
                f"scale_factor={scale_factor!r}"
            )
        if not isinstance(mode, str) or mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        if size is not None:
            _pair(size, "size", 1)
        else:
            factors = scale_factor if isinstance(scale_factor, tuple | list) else (scale_factor,)
            if len(factors) not in (1, 2):
                raise ValueError(f"scale_factor must be a number or a pair, got {scale_factor!r}")
            for f in factors:
                _number(f, "scale_factor", 0, lo_open=True)
        if align_corners is not None:
            _flag(align_corners, "align_corners")
        if align_corners is not None and mode != "bilinear":
            raise ValueError(
                f"Upsample: align_corners can only be set with mode='bilinear', got mode={mode!r}"
            )
        self.size, self.scale_factor, self.mode, self.align_corners = (
            size, scale_factor, mode, align_corners)  # fmt: skip

    def forward(self, x):
        check_input(self, x, "(N, C, H, W)", 4)
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
