"""Elementwise arithmetic. Broadcasting is free: the engine sums gradients back to input shapes."""

import numpy as np

from .. import checks
from ..autograd import Function
from ..backend import array_module
from ..creation import as_tensor
from ..tensor import Tensor
from .activation import Unary, floating


def _check_broadcast(name, *arrays):
    """NumPy's own error names neither the op nor both shapes clearly; say all three."""
    shapes = [tuple(a.shape) for a in arrays]
    if all(s == shapes[0] for s in shapes):
        return  # the common case, no work
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise ValueError(f"cannot broadcast shapes {listed} in {name}") from None


class Add(Function):
    """d(a+b) = da + db"""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("Add", a, b)
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Neg(Function):
    """d(-a) = -da"""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Mul(Function):
    """d(a·b) = b·da + a·db"""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("Mul", a, b)
        # Only what the backward reads (a's gradient needs b, b's needs a), as PyTorch: changing a
        # tensor in place that no gradient needs is then no error (a weight times a fixed input).
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (
            g * b if ctx.needs_input_grad[0] else None,
            g * a if ctx.needs_input_grad[1] else None,
        )


class Div(Function):
    """d(a/b) = da/b − a·db/b²"""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("Div", a, b)
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)  # as Mul: what's read
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = g / b if ctx.needs_input_grad[0] else None
        gb = -g * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class PowScalar(Function):
    """d(aᵖ) = p·aᵖ⁻¹·da, for a number p"""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        return a**p

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        p = ctx.p
        return g * (p * a ** (p - 1)) if p != 0 else g * 0, None


class Pow(Function):
    """d(aᵇ) = b·aᵇ⁻¹·da + ln(a)·aᵇ·db"""

    @staticmethod
    def forward(ctx, a, b):
        _check_broadcast("Pow", a, b)
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        xp = array_module(a)
        ga = g * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            # ln(a) is undefined for a <= 0; PyTorch gives 0 there when aᵇ is 0, we do the same.
            safe = xp.where(a > 0, a, 1)
            gb = g * out * xp.log(safe)
        return ga, gb


class Exp(Unary):
    """d exp(a) = exp(a)·da"""

    f = staticmethod(lambda a: array_module(a).exp(a))
    chain = staticmethod(lambda g, out: g * out)


class Log(Unary):
    """d ln(a) = da/a"""

    saves = "input"
    f = staticmethod(lambda a: array_module(a).log(a))
    chain = staticmethod(lambda g, a: g / a)


class Sqrt(Unary):
    """d √a = da / (2√a)"""

    f = staticmethod(lambda a: array_module(a).sqrt(a))
    chain = staticmethod(lambda g, out: g / (2 * out))


class Abs(Unary):
    """d|a| = sign(a)·da (0 at a = 0, as PyTorch)"""

    saves = "input"
    f = staticmethod(lambda a: array_module(a).abs(a))
    chain = staticmethod(lambda g, a: g * array_module(a).sign(a))


class Where(Function):
    """where(c, a, b): the gradient goes to a where c holds, to b elsewhere"""

    @staticmethod
    def forward(ctx, cond, a, b):
        _check_broadcast("Where", cond, a, b)
        xp = array_module(a)
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        xp = array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        ga = xp.where(cond, g, zero) if ctx.needs_input_grad[1] else None
        gb = xp.where(cond, zero, g) if ctx.needs_input_grad[2] else None
        return None, ga, gb


class Clamp(Function):
    """clamp(a, lo, hi): the gradient passes where lo ≤ a ≤ hi"""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.bounds = lo, hi
        return array_module(a).clip(a, lo, hi).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        inside = a == a  # all True, same shape
        if lo is not None:
            inside = inside & (a >= lo)
        if hi is not None:
            inside = inside & (a <= hi)
        # where, not g·inside: a NaN or inf gradient stops outside the bounds (PyTorch's too)
        return array_module(g).where(inside, g, g.dtype.type(0)), None, None


def clamp(x, min=None, max=None):
    """Clip ``x`` to [min, max]; either bound may be None (numbers; for tensor bounds use
    ``maximum``/``minimum``)."""
    checks.tensor(x, "clamp")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (
            isinstance(bound, bool | np.bool_) or not isinstance(bound, int | float | np.number)
        ):
            raise TypeError(
                f"clamp: {name} must be a number or None, got {type(bound).__name__}; for a "
                "tensor bound use F.maximum / F.minimum"
            )
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clamp: min must be <= max, got min={min}, max={max}")
    if x.dtype.kind != "f" and any(isinstance(b, float | np.floating) for b in (min, max)):
        x = x.astype(np.float32)  # an integer tensor meets a float bound: float32, as PyTorch
    return Clamp.apply(x, min, max)


def where(condition, a, b):
    """Elementwise ``a`` where ``condition`` else ``b`` (``condition`` is a bool array or Tensor)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else as_tensor(a)
    # An integer side joins the float one's dtype, as for a + b (NumPy would give float64).
    a, b = like._operand(a)._pair(like._operand(b))
    if getattr(cond, "dtype", None) is None or cond.dtype.kind != "b":
        raise TypeError(
            f"condition must be a bool array or tensor, got {getattr(cond, 'dtype', cond)}"
        )
    return Where.apply(cond, a, b)


def _operands(fn, a, b):
    """``a`` and ``b`` (one of them a Tensor, the other may be a number) as broadcastable Tensors."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    if like is None:
        raise TypeError(
            f"{fn}: a or b must be a minidense Tensor, got {type(a).__name__} and {type(b).__name__}"
        )
    a, b = like._operand(a)._pair(like._operand(b))  # int meets float: the float's dtype
    checks.broadcast(fn, a=a.shape, b=b.shape)
    return a, b


def maximum(a, b):
    """Elementwise maximum; the gradient goes to ``a`` on ties."""
    a, b = _operands("maximum", a, b)
    return where((a >= b).data, a, b)


def minimum(a, b):
    """Elementwise minimum; the gradient goes to ``a`` on ties."""
    a, b = _operands("minimum", a, b)
    return where((a <= b).data, a, b)


def exp(x):
    return Exp.apply(floating(x, "exp"))


def log(x):
    return Log.apply(floating(x, "log"))


def sqrt(x):
    return Sqrt.apply(floating(x, "sqrt"))


def abs(x):
    return Abs.apply(checks.tensor(x, "abs"))
