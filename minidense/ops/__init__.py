"""Differentiable ops: ``Function`` subclasses with forward and backward side by side, and the public
functions that check their arguments and apply them (``minidense.functional`` lists them all).

Generic math lowers to the array modules of ``minidense.backend``; the dense and RoI families wrap
the hand-written kernels of ``minidense.kernels``. Importing this package installs ``Tensor``'s
math methods (``tensor_methods.py``).
"""

from . import tensor_methods

tensor_methods.install()
