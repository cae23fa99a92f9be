"""Parameter updates the optimizers run under ``no_grad()``: in place, one fused kernel each;
and the gradients' sum of squares that gradient clipping reads."""

import numpy as np

from ..kernels import clip
from ..kernels.adam import adam_update


def fused_adam_(p, g, m, v, lr, betas, eps, weight_decay, step, decoupled):
    """Adam's (or, ``decoupled``, AdamW's) update of Tensor ``p`` and its moving averages ``m``,
    ``v`` in place with one kernel, bit for bit the optimizer's NumPy formula; ``step``: t after
    this step. Only when ``p`` owns its memory and ``p``, ``g``, ``m``, ``v`` are contiguous
    arrays of one float dtype and shape on one device; returns False (nothing done) otherwise,
    and the optimizer takes its general path."""
    data = p.data
    arrays = (data, g, m, v)
    if p._base is not None or data.dtype not in (np.float32, np.float64):
        return False
    if any(type(a) is not type(data) or a.dtype != data.dtype or a.shape != data.shape
           for a in arrays):  # fmt: skip
        return False
    if isinstance(data, np.ndarray) and not all(a.flags.c_contiguous for a in arrays):
        return False  # (device arrays are always contiguous)

    def update(own):
        flat = [a.reshape(-1) for a in (own, g, m, v)]  # views: the arrays are contiguous
        adam_update(*flat, lr, betas, eps, weight_decay, step, decoupled)

    # Through the in-place machinery, so that the version counter moves as with p.sub_(...)
    p._inplace("adam_", None, fast=update)
    return True


def sum_of_squares(a):
    """Σ a² of a raw gradient array in float64, as a Python float: a parallel kernel on the host,
    array ops on a device."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return clip.sum_of_squares(a)
    return float((a.astype(np.float64) ** 2).sum())
