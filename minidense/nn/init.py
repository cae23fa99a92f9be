"""Weight initialisers. Each fills a Parameter in place (``copy_`` under ``no_grad()``, so its
version moves on, on whatever device it lives) from the seedable default generator."""

import math

import numpy as np

from .. import checks
from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor, default_generator

__all__ = [
    "calculate_fan", "kaiming_normal_", "kaiming_uniform_", "xavier_uniform_", "zeros_", "ones_",
    "constant_", "normal_", "bilinear_",
]  # fmt: skip


def calculate_fan(shape):
    """(fan_in, fan_out) of a weight: Linear (out, in), Conv (out, in/groups, kH, kW)."""
    shape = checks.int_tuple(shape, "calculate_fan", "shape")
    if len(shape) < 2:
        raise ValueError(f"fan needs a weight of at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity, a=0.0):
    checks.choice(nonlinearity, _NONLINEARITIES, "", "nonlinearity")
    a = checks.number(a, "init", "a")
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity in ("linear", "sigmoid"):
        return 1.0
    return 5.0 / 3  # tanh


def _tensor(p, name):
    if not isinstance(p, Tensor):
        raise TypeError(
            f"{name}: p must be a Parameter or Tensor to fill in place, got {type(p).__name__}"
        )
    if p.dtype.kind != "f":
        raise TypeError(f"{name}: p must be floating point, got {p.dtype}")
    return p


_NONLINEARITIES = ("relu", "leaky_relu", "linear", "sigmoid", "tanh")


def _fan(shape, mode):
    if not isinstance(mode, str) or mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_fan(shape)[0 if mode == "fan_in" else 1]


def _fill(p, values):
    with no_grad():
        p.copy_(np.asarray(values, dtype=p.dtype))
    return p


def kaiming_normal_(p, mode="fan_in", nonlinearity="relu", a=0.0):
    """He et al. 2015: N(0, gain²/fan), keeps activations' variance through ReLU layers."""
    _tensor(p, "kaiming_normal_")
    fan = _fan(p.shape, mode)
    std = _gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(p, default_generator().normal(0.0, std, p.shape))


def kaiming_uniform_(p, mode="fan_in", nonlinearity="relu", a=0.0):
    _tensor(p, "kaiming_uniform_")
    fan = _fan(p.shape, mode)
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _fill(p, default_generator().uniform(-bound, bound, p.shape))


def xavier_uniform_(p, gain=1.0):
    _tensor(p, "xavier_uniform_")
    checks.number(gain, "xavier_uniform_", "gain", lo=0)
    fan_in, fan_out = calculate_fan(p.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(p, default_generator().uniform(-bound, bound, p.shape))


def normal_(p, mean=0.0, std=1.0):
    _tensor(p, "normal_")
    checks.number(mean, "normal_", "mean")
    checks.number(std, "normal_", "std", lo=0)
    return _fill(p, default_generator().normal(mean, std, p.shape))


def constant_(p, value):
    with no_grad():
        _tensor(p, "constant_").fill_(value)
    return p


def zeros_(p):
    return constant_(p, 0.0)


def ones_(p):
    return constant_(p, 1.0)


def bilinear_(p):
    """FCN's initialisation of a ConvTranspose2d weight ``(C, C/groups, k, k)``: the bilinear
    upsampling filter from each channel to itself, zeros elsewhere."""
    if _tensor(p, "bilinear_").ndim != 4:
        raise ValueError(f"bilinear_ needs a (C, C/groups, k, k) weight, got shape {p.shape}")
    c_in, c_out_g, kh, kw = p.shape
    if kh != kw:
        raise ValueError(f"bilinear_ needs a square kernel, got {kh}x{kw}")
    if c_out_g == 1:  # depthwise (groups = C): every group is its own channel
        k = F.bilinear_kernel(1, 1, kh)
        return _fill(p, np.broadcast_to(k, p.shape))
    if c_in != c_out_g:
        raise ValueError(f"bilinear_ needs as many output as input channels, got {p.shape}")
    return _fill(p, F.bilinear_kernel(c_in, c_out_g, kh))
