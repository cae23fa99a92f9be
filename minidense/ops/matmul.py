"""Batched matrix product with NumPy's broadcasting rules, and the fully connected layer's
``linear`` (one op, so its weight gradient comes out in the weight's own layout)."""

import numpy as np

from .. import checks
from ..autograd import Function, unbroadcast
from ..backend import array_module


class MatMul(Function):
    """d(A@B) = dA@B + A@dB, so grad_A = G@Bᵀ and grad_B = Aᵀ@G (summed over broadcast batches)"""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs tensors of at least one dimension; use * for scalars")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: a's last dimension ({a.shape[-1]}) must equal b's "
                f"{'second-to-last' if b.ndim > 1 else 'only'} dimension, got shapes "
                f"{a.shape} and {b.shape}"
            )
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
        # Only what the backward reads (A's gradient needs B, B's needs A), as PyTorch: a first
        # layer's weight may then change between forward and backward.
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None,
                              b if ctx.needs_input_grad[0] else None)  # fmt: skip
        # Vectors as 1-row / 1-column matrices, so one formula covers every case.
        ctx.shapes = (a.shape, (1,) + a.shape if a.ndim == 1 else a.shape,
                      b.shape, b.shape + (1,) if b.ndim == 1 else b.shape)  # fmt: skip
        return array_module(a).matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a_shape, a2_shape, b_shape, b2_shape = ctx.shapes
        batch = np.broadcast_shapes(a2_shape[:-2], b2_shape[:-2])
        g2 = g.reshape(batch + (a2_shape[-2], b2_shape[-1]))
        ga = gb = None
        if ctx.needs_input_grad[0]:
            b2 = b[:, None] if b.ndim == 1 else b
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2_shape).reshape(a_shape)
        if ctx.needs_input_grad[1]:
            a2 = a[None, :] if a.ndim == 1 else a
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2_shape).reshape(b_shape)
        return ga, gb


class Linear(Function):
    """y = x·Wᵀ + b over the last axis of x (any leading axes).

    grad_x = G·W, grad_W = Gᵀ·x, grad_b = Σ G over the leading axes. As ``x @ W.T`` the weight's
    gradient would come back through the transpose as a transposed view, and the first copy of
    it into ``.grad`` (8 ms for Mask R-CNN's 256×4704 box-head layer) is a strided transpose;
    here Gᵀ·x is computed in W's layout directly.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              weight if ctx.needs_input_grad[0] else None)  # fmt: skip
        ctx.x_shape = x.shape
        x2 = x.reshape(-1, x.shape[-1])
        y = array_module(x).matmul(x2, weight.swapaxes(0, 1))
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = (g2 @ weight).reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            gw = g2.swapaxes(0, 1) @ x.reshape(-1, x.shape[-1])
        if ctx.needs_input_grad[2]:
            gb = g2.sum(axis=0)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """Fully connected layer, PyTorch's ``F.linear``: ``input @ weight.T + bias``.

    Args:
        input (Tensor[..., in_features]); weight (Tensor[out_features, in_features]);
        bias (Tensor[out_features] or None), all in one float dtype.
    Returns:
        Tensor[..., out_features].
    """
    checks.tensor(input, "linear", "input", floating=True, layout="(..., in_features)")
    checks.tensor(weight, "linear", "weight", ndim=2, layout="(out_features, in_features)")
    checks.same_dtype(weight, input, "linear", "weight")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input's last dimension must be weight's in_features ({weight.shape[1]}), "
            f"got input shape {input.shape}"
        )
    if bias is not None:
        checks.tensor(bias, "linear", "bias", ndim=1, layout="(out_features,)")
        checks.same_dtype(bias, input, "linear", "bias")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(
                f"linear: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}"
            )
    return Linear.apply(input, weight, bias)
