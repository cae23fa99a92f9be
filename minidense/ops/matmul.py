"""Batched matrix product with NumPy's broadcasting rules."""

import numpy as np

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
