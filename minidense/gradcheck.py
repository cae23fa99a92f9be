"""``gradcheck``: compare an op's analytic backward with float64 central differences.

For every input that requires grad, the full Jacobian is built twice — numerically, by nudging one
element at a time by ±eps, and analytically, by one backward pass per output element — and the
two must agree to ``atol + rtol·|numerical|``. A NaN or infinite entry on either side counts as a
mismatch (like ``torch.allclose(..., equal_nan=False)``), so a backward that returns NaN cannot
pass. Keep inputs small: the cost is 2·(input elements) forwards plus (output elements) backwards.
"""

import math

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


def _check_number(name, value, positive):
    """``value`` as a float, or a ValueError/TypeError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"gradcheck: {name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"gradcheck: {name} must be finite and {need}, got {value!r}")
    return number


def _leaf_copies(inputs, checked):
    """Inputs the check can perturb in place and read ``.grad`` from.

    A leaf with a writable array is used as it is (so ``fn`` sees its memory layout, strides
    included). A non-leaf (whose ``.grad`` backward does not keep) or a read-only array (a
    sample from ``data.Cached``) is replaced by a detached leaf copy; a tensor passed twice gets
    one copy, used in both places.
    """
    copies = {}
    for i in checked:
        t = inputs[i]
        if t.is_leaf and t.data.flags.writeable:
            continue
        if id(t) not in copies:
            copies[id(t)] = Tensor._wrap(np.array(t.data, copy=True, order="K")).requires_grad_()
        inputs[i] = copies[id(t)]
    return inputs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check ``fn(*inputs)``'s gradients against central differences.

    fn: a function of Tensors returning a Tensor (or a tuple; its float outputs are all checked).
    inputs: Tensors (checked if ``requires_grad``, which needs float64) and other arguments, or a
        single Tensor. Checked inputs that are not leaves, or whose array is read-only, are
        replaced by detached copies before ``fn`` sees them.
    eps: the finite-difference step (finite, > 0); atol, rtol: tolerances (finite, >= 0).
    Returns True, or raises ``GradcheckError`` naming the input, the element and both values
    (returns False instead when ``raise_exception=False``). NaN or infinite gradients, on either
    side, are mismatches. Inputs' ``.grad`` are left as they were.
    """
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be callable, got {type(fn).__name__}")
    if not isinstance(inputs, Tensor | list | tuple):
        raise TypeError(
            f"gradcheck: inputs must be a Tensor or a list/tuple of arguments, got "
            f"{type(inputs).__name__}"
        )
    if not isinstance(raise_exception, bool):
        raise TypeError(
            f"gradcheck: raise_exception must be True or False, got {raise_exception!r}"
        )
    eps = _check_number("eps", eps, positive=True)
    atol = _check_number("atol", atol, positive=False)
    rtol = _check_number("rtol", rtol, positive=False)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs "
                "(float32 finite differences are too coarse to trust)"
            )
        if not isinstance(inputs[i].data, np.ndarray):
            raise TypeError(
                f"gradcheck: input {i} is on {inputs[i].device!r}; check on the CPU "
                "(finite differences nudge the array element by element)"
            )
    inputs = _leaf_copies(inputs, checked)
    saved_grads = {i: inputs[i].grad for i in checked}

    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no floating tensor to differentiate")
    out_shapes = [o.shape for o in outs]
    total_out = sum(o.size for o in outs)

    # Numerical Jacobians: rows = output elements, columns = input elements.
    numerical = {}
    with no_grad(), np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are judged below
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
        inputs[i].grad = saved_grads[i]

    for i in checked:
        a, n = analytic[i], numerical[i]
        with np.errstate(invalid="ignore", over="ignore"):
            # Written as "not close" so that a NaN on either side (or inf - inf) is a mismatch.
            bad = ~(np.abs(a - n) <= atol + rtol * np.abs(n))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            element = np.unravel_index(c, inputs[i].shape)
            j, start = 0, 0  # which output row r belongs to, and where that output starts
            while r >= start + math.prod(out_shapes[j]):
                start += math.prod(out_shapes[j])
                j += 1
            out_element = np.unravel_index(r - start, out_shapes[j])
            nonfinite = int((~np.isfinite(a) | ~np.isfinite(n)).sum())
            msg = (
                f"gradcheck failed for input {i} (shape {inputs[i].shape}) at element "
                f"{tuple(int(e) for e in element)}, output element {r} (output {j} of "
                f"{len(out_shapes)}, shape {out_shapes[j]}, element "
                f"{tuple(int(e) for e in out_element)}): analytic {a[r, c]:.8g} vs "
                f"numerical {n[r, c]:.8g} ({int(bad.sum())} of {bad.size} Jacobian entries differ"
                + (f", {nonfinite} of them NaN or infinite" if nonfinite else "")
                + ")"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
