"""Normalisation: batch norm as one Function (its backward has a compact closed form), group norm
as a composite of reductions."""

import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_module, device_of, is_device_array
from ..kernels import norm as K
from ..tensor import Tensor
from .activation import relu as relu_fn


class BatchNormTrain(Function):
    """y = γ·x̂ + β with x̂ = (x − μ_B)/√(σ²_B + ε), statistics over (N, H, W) per channel.

    grad_x = (γ/σ)·(g − mean(g) − x̂·mean(g·x̂)), grad_γ = Σ g·x̂, grad_β = Σ g  (means over N, H, W)

    With ``relu`` the op is relu(batch_norm(x)) in one (``batch_norm_relu``).

    On the CPU both directions are fused kernels (``minidense.kernels.norm``), which keep x and
    the statistics and recompute x̂ (with ``relu`` also y, the ReLU's mask, which the next layer
    keeps anyway); on a device they are the array ops below, which keep x̂ and recompute the mask
    from it, and also serve as the kernels' reference in the tests.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps, relu=False):
        ctx.relu = relu
        if is_device_array(x):
            y, xhat, mean, var, inv_std = _forward_arrays(x, gamma, beta, eps, relu)
            ctx.save_for_backward(xhat, inv_std, gamma, beta)
        else:
            y, mean, var, ctx.stats = K.batch_norm_train_forward(x, gamma, beta, eps, relu)
            ctx.save_for_backward(x, gamma, y if relu else None)
        # The batch statistics are extra (non-differentiated) outputs, for the running averages.
        return y, mean, var

    @staticmethod
    def backward(ctx, g, _gmean, _gvar):
        need_input = ctx.needs_input_grad[0]
        if is_device_array(g):
            xhat, inv_std, gamma, beta = ctx.saved_tensors
            grads = _backward_arrays(g, xhat, gamma, beta, inv_std, need_input, ctx.relu)
        else:
            x, gamma, y = ctx.saved_tensors
            grads = K.batch_norm_train_backward(g, x, ctx.stats, gamma, need_input, y)
        return (*grads, None, None)


def _forward_arrays(x, gamma, beta, eps, relu=False):
    """BatchNormTrain's forward in array ops: y, x̂, mean (C,), var (C,), inv_std (1, C, 1, ...).
    ``relu``: y = max(γ·x̂ + β, 0)."""
    xp = array_module(x)
    axes, shape = _channel_axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    xhat = x - mean
    var = (xhat * xhat).mean(axis=axes, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat *= inv_std  # in place: the centred copy is ours and not needed again (a pass saved)
    y = _affine(xhat, gamma, beta, shape)
    if relu:
        y = xp.maximum(y, 0)  # NaN stays NaN, as in relu()
    return y, xhat, mean.reshape(-1), var.reshape(-1), inv_std


def _affine(xhat, gamma, beta, shape):
    """γ·x̂ + β (the backward recomputes the ReLU's mask from it: the same operations)."""
    y = xhat * gamma.reshape(shape)
    y += beta.reshape(shape)
    return y


def _backward_arrays(g, xhat, gamma, beta, inv_std, need_input=True, relu=False):
    """BatchNormTrain's backward in array ops: (gx or None, g_gamma, g_beta)."""
    axes, shape = _channel_axes(g)
    if relu:  # where, not g·mask: a NaN gradient stops at the mask, as in the CPU kernel
        g = array_module(g).where(_affine(xhat, gamma, beta, shape) > 0, g, g.dtype.type(0))
    g_beta = g.sum(axis=axes)
    g_gamma = (g * xhat).sum(axis=axes)
    gx = None
    if need_input:
        m = g.size // g.shape[1]
        gx = (gamma.reshape(shape) * inv_std) * (
            g - (g_beta / m).reshape(shape) - xhat * (g_gamma / m).reshape(shape)
        )
    return gx, g_gamma, g_beta


def _channel_axes(x):
    """The axes batch norm reduces over (all but 1), and the broadcast shape of a (C,) vector."""
    return (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):  # fmt: skip
    """Batch normalisation over the channel axis 1 of ``x`` (N, C, ...), PyTorch's signature.

    In training the batch statistics are used and the running ones (arrays or Tensors of shape
    (C,), updated in place, or None) move towards them by ``momentum``; in evaluation the running
    statistics are used. ``weight`` (γ) and ``bias`` (β) of shape (C,) default to 1 and 0.
    """
    return _batch_norm("batch_norm", x, running_mean, running_var, weight, bias, training,
                       momentum, eps, relu=False)  # fmt: skip


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5):  # fmt: skip
    """``relu(batch_norm(x, ...))`` with the same arguments and results, in one op: in training
    the ReLU runs inside batch norm's kernels (no passes of its own over x). ``nn.Sequential``
    uses it for a BatchNorm2d followed by a ReLU, as in every conv → BN → ReLU block."""
    return _batch_norm("batch_norm_relu", x, running_mean, running_var, weight, bias, training,
                       momentum, eps, relu=True)  # fmt: skip


def _batch_norm(fn, x, running_mean, running_var, weight, bias, training, momentum, eps, relu):
    # The running statistics are updated in place: through a Tensor, its array (``t *= m`` on a
    # Tensor would only rebind the local name, leaving the caller's statistics unchanged).
    checks.tensor(x, fn, floating=True, layout="(N, C, ...)")
    checks.flag(training, fn, "training")
    checks.number(momentum, fn, "momentum", lo=0, hi=1)
    checks.number(eps, fn, "eps", lo=0, lo_open=True)
    _check_affine(fn, x, weight, bias)
    running_mean = _running(running_mean, "running_mean")
    running_var = _running(running_var, "running_var")
    if x.ndim < 2:
        raise ValueError(f"{fn} expects (N, C, ...) input, got shape {x.shape}")
    C = x.shape[1]
    shape = (1, C) + (1,) * (x.ndim - 2)
    for name, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):  # fmt: skip
        if v is not None and tuple(v.shape) != (C,):
            raise ValueError(f"{fn}: {name} must have shape ({C},), got {tuple(v.shape)}")
    _check_devices(x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    xp = array_module(x.data)
    weight = xp.ones(C, dtype=x.dtype) if weight is None else weight
    bias = xp.zeros(C, dtype=x.dtype) if bias is None else bias
    if training:
        m = x.size // C
        if x.shape[0] == 0:
            raise ValueError(
                f"{fn} in training got an empty batch {x.shape}: skip empty batches, or "
                "call model.eval() to use the running statistics"
            )
        if m <= 1:
            raise ValueError(
                f"{fn} in training needs more than one value per channel, got input {x.shape}"
            )
        y, mean, var = BatchNormTrain.apply(x, weight, bias, eps, relu)
        if running_mean is not None:
            # PyTorch keeps the unbiased variance in the running estimate.
            running_mean *= 1 - momentum
            running_mean += momentum * mean.data
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var.data * (m / (m - 1))
        return y
    if running_mean is None or running_var is None:
        raise ValueError(f"{fn} in evaluation (training=False) needs running_mean and running_var")
    scale = weight / array_module(running_var).sqrt(running_var + eps).astype(x.dtype)
    shift = bias - running_mean.astype(x.dtype) * scale
    y = x * scale.reshape(shape) + shift.reshape(shape)
    return relu_fn(y) if relu else y


def _check_affine(fn, x, weight, bias):
    """``weight`` and ``bias``: None, float arrays, or Tensors in ``x``'s float dtype."""
    for name, v in (("weight", weight), ("bias", bias)):
        if isinstance(v, Tensor):
            checks.same_dtype(v, x, fn, name)
        elif v is not None and not (
            (isinstance(v, np.ndarray) or is_device_array(v)) and v.dtype.kind == "f"
        ):
            raise TypeError(
                f"{fn}: {name} must be a float Tensor or array of shape (C,), or None, got "
                f"{type(v).__name__}"
            )


def _running(v, name):
    """A running statistic's raw array (updated in place, so never a copy), or None."""
    v = v.data if isinstance(v, Tensor) else v
    if v is not None and not (
        (isinstance(v, np.ndarray) or is_device_array(v)) and v.dtype.kind == "f"
    ):
        raise TypeError(
            f"batch_norm: {name} must be a float array or Tensor of shape (C,) (updated in "
            f"place), or None, got {type(v).__name__}"
        )
    return v


def _check_devices(x, **named):
    """One device for all, as every op requires (the same message), checked before the running
    statistics are touched: a failed call must leave them as they were."""
    devices = [("x", x.device)] + [
        (name, device_of(v.data if isinstance(v, Tensor) else v))
        for name, v in named.items()
        if v is not None
    ]
    if len({d for _, d in devices}) > 1:
        where = ", ".join(f"{name} on {d!r}" for name, d in devices)
        raise ValueError(
            f"batch_norm: all tensors must be on one device, got {where}; move them with .to()"
        )


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He): statistics over each group of C/G channels and H, W."""
    checks.tensor(x, "group_norm", floating=True, layout="(N, C, ...)")
    if x.ndim < 2:
        raise ValueError(f"group_norm expects (N, C, ...) input, got shape {x.shape}")
    checks.number(eps, "group_norm", "eps", lo=0, lo_open=True)
    _check_affine("group_norm", x, weight, bias)
    N, C = x.shape[:2]
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and v.shape != (C,):
            raise ValueError(f"group_norm: {name} must have shape ({C},), got {v.shape}")
    if (
        isinstance(num_groups, bool | np.bool_)
        or not isinstance(num_groups, int | np.integer)
        or (num_groups < 1)
    ):
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the {C} channels")
    if x.size == 0:
        # An empty batch (N = 0) or map: nothing to normalise, and no statistics to take (the
        # reshape below cannot infer its -1 next to N = 0). Still a graph, so backward works.
        y = x * 0.0
    else:
        g = x.reshape(N, num_groups, -1)
        mean = g.mean(axis=2, keepdims=True)
        centred = g - mean
        var = (centred * centred).mean(axis=2, keepdims=True)
        y = (centred / (var + eps).sqrt()).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y
