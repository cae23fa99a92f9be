"""``gradcheck``: compare an op's analytic backward with float64 central differences.

For every input that requires grad, the full Jacobian is built twice — numerically, by nudging one
element at a time by ±eps, and analytically, by one backward pass per output element — and the
two must agree to ``atol + rtol·|numerical|``. Keep inputs small: the cost is
2·(input elements) forwards plus (output elements) backwards.
"""

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, tuple | list) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check ``fn(*inputs)``'s gradients against central differences.

    fn: a function of Tensors returning a Tensor (or a tuple; its float outputs are all checked).
    inputs: Tensors (checked if ``requires_grad``, which needs float64) and other arguments.
    Returns True, or raises ``GradcheckError`` naming the input, the element and both values
    (returns False instead when ``raise_exception=False``).
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs "
                "(float32 finite differences are too coarse to trust)"
            )

    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no floating tensor to differentiate")
    sizes = [o.size for o in outs]
    total_out = sum(sizes)

    # Numerical Jacobians: rows = output elements, columns = input elements.
    numerical = {}
    with no_grad():
        for i in checked:
            x = inputs[i].data
            jac = np.zeros((total_out, x.size))
            # Index in place (not through reshape, which copies non-contiguous arrays).
            for k, idx in enumerate(np.ndindex(x.shape)):
                orig = x[idx]
                x[idx] = orig + eps
                plus = np.concatenate([o.numpy().ravel() for o in _outputs(fn, inputs)])
                x[idx] = orig - eps
                minus = np.concatenate([o.numpy().ravel() for o in _outputs(fn, inputs)])
                x[idx] = orig
                jac[:, k] = (plus - minus) / (2 * eps)
            numerical[i] = jac

    # Analytic Jacobians: one backward per output element.
    analytic = {i: np.zeros((total_out, inputs[i].size)) for i in checked}
    outs = _outputs(fn, inputs)
    row = 0
    for o in outs:
        for k in range(o.size):
            for i in checked:
                inputs[i].grad = None
            seed = np.zeros(o.size)
            seed[k] = 1.0
            if o.requires_grad:
                o.backward(seed.reshape(o.shape).astype(o.dtype), retain_graph=True)
            for i in checked:
                g = inputs[i].grad
                if g is not None:
                    analytic[i][row] = g.numpy().ravel()
            row += 1
    for i in checked:
        inputs[i].grad = None

    for i in checked:
        a, n = analytic[i], numerical[i]
        bad = np.abs(a - n) > atol + rtol * np.abs(n)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            element = np.unravel_index(c, inputs[i].shape)
            msg = (
                f"gradcheck failed for input {i} (shape {inputs[i].shape}) at element "
                f"{tuple(int(e) for e in element)}, output element {r}: analytic {a[r, c]:.8g} vs "
                f"numerical {n[r, c]:.8g} ({int(bad.sum())} of {bad.size} Jacobian entries differ)"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
