"""Losses. Each takes ``reduction`` in {"mean", "sum", "none"}, as PyTorch does."""

import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_module, is_device_array, on_device_of
from ..kernels import cross_entropy as K
from ..tensor import Tensor
from .activation import stable_log_softmax, stable_sigmoid
from .elementwise import where

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    checks.choice(reduction, _REDUCTIONS, "", "reduction")


def _check_input(input, fn):
    """Losses take a float Tensor (the model's output) as ``input``; targets may be arrays."""
    checks.tensor(input, fn, layout="(the model's output)")
    if input.dtype.kind != "f":
        raise TypeError(
            f"{fn}: input must be float32 or float64 (logits or predictions), got {input.dtype}"
        )


def _reduce(loss, reduction):
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


class CrossEntropy(Function):
    """−w[t]·log softmax(x)[t]; grad_x = w[t]·(softmax(x) − onehot(t)) / normaliser

    ``logits`` is ``(M, C)`` here (the public function moves the class axis last and flattens).
    On the CPU the log-softmax and the gradient are row-wise kernels
    (``minidense.kernels.cross_entropy``); on a device, the array ops below.
    """

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction):
        xp = array_module(logits)
        valid = target != ignore_index
        safe_t = xp.where(valid, target, 0)
        lsm = (
            stable_log_softmax(logits, 1) if is_device_array(logits) else K.log_softmax_rows(logits)
        )
        picked = xp.take_along_axis(lsm, safe_t[:, None], axis=1)[:, 0]
        w = (weight[safe_t] if weight is not None else xp.ones_like(picked)) * valid
        if reduction == "mean":
            # PyTorch divides by the summed weights of the non-ignored targets (0/0 → nan).
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = 1.0 / w.sum()
        else:
            scale = 1.0
        ctx.save_for_backward(lsm, safe_t, w)
        ctx.meta = reduction, scale
        loss = -picked * w
        if reduction == "none":
            return loss.astype(logits.dtype)
        return xp.asarray(loss.sum() * scale, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        lsm, t, w = ctx.saved_tensors
        reduction, scale = ctx.meta
        xp = array_module(lsm)
        coef = w * g if reduction == "none" else w * (scale * g[()])
        if not is_device_array(lsm):
            return K.cross_entropy_grad_rows(lsm, t, coef), None, None, None, None
        grad = xp.exp(lsm)
        rows = xp.arange(len(t))
        grad[rows, t] -= 1
        return grad * coef[:, None], None, None, None, None


class BCEWithLogits(Function):
    """max(x,0) − x·y + log(1+e^−|x|); grad_x = (sigmoid(x) − y)·w — exact at x = 0, stable for |x| ≫ 1"""

    @staticmethod
    def forward(ctx, x, y, weight):
        xp = array_module(x)
        loss = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, y, weight)
        return loss.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y, weight = ctx.saved_tensors
        gx = (stable_sigmoid(x) - y) * g
        if weight is not None:
            gx = gx * weight
        gy = -x * g if ctx.needs_input_grad[1] else None
        if gy is not None and weight is not None:
            gy = gy * weight
        return gx, gy, None


def _as_like(value, like, fn, name):
    """A target or weight as a Tensor on ``like``'s device, in ``like``'s float dtype if it is a
    float Tensor already (said by name, not as the generic "mixed float dtypes")."""
    if not isinstance(value, Tensor):
        try:
            return like._operand(value)
        except TypeError:
            raise TypeError(
                f"{fn}: {name} must be numeric (a Tensor or an array), got {type(value).__name__}"
            ) from None
    checks.same_dtype(value, like, fn, name)
    if value.device != like.device:
        raise ValueError(
            f"{fn}: {name} is on {value.device!r} but input is on {like.device!r}; move it with "
            f".to({like.device!r})"
        )
    return value


def _host_weight(weight, fn, dtype):
    w = weight.numpy() if isinstance(weight, Tensor) else np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: weight must be numeric, got dtype {w.dtype}")
    return w.astype(dtype)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy over the class axis 1.

    input: ``(N, C)`` or ``(N, C, d1, d2, ...)`` logits (e.g. ``(N, C, H, W)`` for segmentation);
    target: integer class indices of shape ``(N,)`` or ``(N, d1, d2, ...)``;
    weight: optional ``(C,)`` class weights; targets equal to ``ignore_index`` contribute nothing.
    """
    _check_reduction(reduction)
    _check_input(input, "cross_entropy")
    checks.integer(ignore_index, "cross_entropy", "ignore_index")
    if input.ndim < 2:
        raise ValueError(f"input must be (N, C) or (N, C, ...) logits, got shape {input.shape}")
    t = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"target must have shape {expected} for input {input.shape}, got {t.shape}"
        )
    C = input.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if bad.any():
        raise ValueError(
            f"target holds class {t[bad].flat[0]}, outside [0, {C}) for {C} classes "
            f"(ignore_index={ignore_index}); the model needs one output channel per class, "
            "and pixels to skip should be set to ignore_index"
        )
    w = None
    if weight is not None:
        w = _host_weight(weight, "cross_entropy", input.dtype)
        if w.shape != (C,):
            raise ValueError(f"weight must have shape ({C},), got {w.shape}")
    # Move the class axis last and flatten: (N, C, d...) → (N·d..., C).
    flat = input
    if input.ndim > 2:
        flat = input.permute((0,) + tuple(range(2, input.ndim)) + (1,))
    flat = flat.reshape(-1, C)
    # Targets and weights were checked on the host; they join the logits' device.
    t = on_device_of(t.reshape(-1).astype(np.int64), input.data)
    w = None if w is None else on_device_of(w, input.data)
    loss = CrossEntropy.apply(flat, t, w, ignore_index, reduction)
    return loss.reshape(expected) if reduction == "none" else loss


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy on logits, stable for |x| ≫ 1. ``target`` in [0, 1], same shape."""
    fn = "binary_cross_entropy_with_logits"
    _check_reduction(reduction)
    _check_input(input, fn)
    target = _as_like(target, input, fn, "target")
    if target.shape != input.shape:
        raise ValueError(f"target must have input's shape {input.shape}, got {target.shape}")
    w = None
    if weight is not None:
        w = _host_weight(weight, fn, input.dtype)
        checks.broadcast(fn, weight=w.shape, input=input.shape)
        w = on_device_of(w, input.data)
    return _reduce(BCEWithLogits.apply(input, target, w), reduction)


def smooth_l1_loss(input, target, beta=1.0, reduction="mean"):
    """0.5·d²/β where |d| < β, |d| − 0.5·β elsewhere (β = 0: plain L1). Composite op."""
    _check_reduction(reduction)
    _check_input(input, "smooth_l1_loss")
    if not isinstance(beta, int | float | np.number) or not (beta >= 0 and np.isfinite(beta)):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    target = _as_like(target, input, "smooth_l1_loss", "target")
    if target.shape != input.shape:
        raise ValueError(f"target must have input's shape {input.shape}, got {target.shape}")
    d = input - target
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction)
    return _reduce(where((ad < beta).data, 0.5 * d * d / beta, ad - 0.5 * beta), reduction)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error. Composite op."""
    _check_reduction(reduction)
    _check_input(input, "mse_loss")
    target = _as_like(target, input, "mse_loss", "target")
    if target.shape != input.shape:
        raise ValueError(f"target must have input's shape {input.shape}, got {target.shape}")
    d = input - target
    return _reduce(d * d, reduction)
