"""Normalisation: batch norm as one Function (its backward has a compact closed form), group norm
as a composite of reductions."""

from ..autograd import Function
from ..backend import array_module


class BatchNormTrain(Function):
    """y = γ·x̂ + β with x̂ = (x − μ_B)/√(σ²_B + ε), statistics over (N, H, W) per channel.

    grad_x = (γ/σ)·(g − mean(g) − x̂·mean(g·x̂)), grad_γ = Σ g·x̂, grad_β = Σ g  (means over N, H, W)
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        xp = array_module(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + eps)
        xhat = centred
        xhat *= inv_std  # in place: ``centred`` is ours and not needed again (a pass saved)
        ctx.save_for_backward(xhat, inv_std, gamma)
        ctx.meta = axes, shape
        # Return the batch statistics as extra (non-differentiated) outputs for the running averages.
        y = xhat * gamma.reshape(shape)
        y += beta.reshape(shape)
        return y, mean.reshape(-1), var.reshape(-1)

    @staticmethod
    def backward(ctx, g, _gmean, _gvar):
        xhat, inv_std, gamma = ctx.saved_tensors
        axes, shape = ctx.meta
        g_beta = g.sum(axis=axes)
        g_gamma = (g * xhat).sum(axis=axes)
        gx = None
        if ctx.needs_input_grad[0]:
            m = g.size // g.shape[1]
            gx = (gamma.reshape(shape) * inv_std) * (
                g - (g_beta / m).reshape(shape) - xhat * (g_gamma / m).reshape(shape)
            )
        return gx, g_gamma, g_beta, None


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    """Batch normalisation over the channel axis 1 of ``x`` (N, C, ...).

    In training the batch statistics are used and the running ones (raw arrays, updated in place)
    move towards them by ``momentum``; in evaluation the running statistics are used.
    """
    C = x.shape[1] if x.ndim >= 2 else None
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects (N, C, ...) input, got shape {x.shape}")
    shape = (1, C) + (1,) * (x.ndim - 2)
    if training:
        m = x.size // C
        if x.shape[0] == 0:
            raise ValueError(
                f"batch_norm in training got an empty batch {x.shape}: skip empty batches, or "
                "call model.eval() to use the running statistics"
            )
        if m <= 1:
            raise ValueError(
                f"batch_norm in training needs more than one value per channel, got input {x.shape}"
            )
        y, mean, var = BatchNormTrain.apply(x, weight, bias, eps)
        if running_mean is not None:
            # PyTorch keeps the unbiased variance in the running estimate.
            running_mean *= 1 - momentum
            running_mean += momentum * mean.data
            running_var *= 1 - momentum
            running_var += momentum * var.data * (m / (m - 1))
        return y
    scale = weight / array_module(running_var).sqrt(running_var + eps).astype(x.dtype)
    shift = bias - running_mean.astype(x.dtype) * scale
    return x * scale.reshape(shape) + shift.reshape(shape)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He): statistics over each group of C/G channels and H, W."""
    N, C = x.shape[:2]
    if isinstance(num_groups, bool) or not hasattr(num_groups, "__index__") or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the {C} channels")
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
