"""minidense: a small, readable deep-learning framework for dense prediction.

NumPy arrays, reverse-mode autograd, and hand-written Numba kernels for the CPU and CUDA.
"""

from . import (
    _env,  # noqa: F401  (must run before numba is imported)
    functional,
    nn,
    optim,
)
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .creation import (
    arange,
    as_tensor,
    full,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, default_generator, manual_seed

F = functional
__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "as_tensor", "zeros", "ones", "full", "arange", "zeros_like", "ones_like",
    "randn", "rand", "manual_seed", "default_generator",
    "Function", "no_grad", "enable_grad", "is_grad_enabled",
    "gradcheck", "GradcheckError", "functional", "F", "nn", "optim",
]  # fmt: skip
