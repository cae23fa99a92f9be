"""Differentiable ops: ``Function`` subclasses with forward and backward side by side.

Generic math lowers to the primitives of ``minidense.backend``; the dense and RoI families wrap the
hand-written kernels of ``minidense.kernels``.
"""
