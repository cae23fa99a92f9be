"""Reverse-mode automatic differentiation: ``Function``, its ``Context``, and the backward engine.

A differentiable op is one small class::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):            # raw arrays in (np.ndarray or device array) ...
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y                    # ... raw array(s) out
        @staticmethod
        def backward(ctx, grad):        # d/dx exp = exp
            (y,) = ctx.saved_tensors
            return grad * y             # one gradient per forward argument (None = no gradient)

    y = Exp.apply(x)                    # Tensor in, Tensor out, graph recorded

The engine (``backward`` below) owns graph traversal and un-broadcasting: an op may return a
gradient with the *broadcast* shape of its output, and the engine sums it back to each input's shape.
"""

import functools
import threading

import numpy as np

from . import views
from .backend import array_module, move

__all__ = [
    "Function", "Context", "Variable", "no_grad", "enable_grad", "is_grad_enabled", "backward",
    "unbroadcast",
]  # fmt: skip

_state = threading.local()


def is_grad_enabled():
    """Whether ops record a graph (False inside ``no_grad()``)."""
    return getattr(_state, "enabled", True)


class _GradMode:
    enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = self.enabled

    def __exit__(self, *exc):
        _state.enabled = self._prev

    def __new__(cls, fn=None):
        # ``@no_grad`` without parentheses: decorate directly, as torch.no_grad allows.
        mode = super().__new__(cls)
        if fn is not None and not callable(fn):
            raise TypeError(
                f"{cls.__name__}() takes no argument (or decorates a function), got {fn!r}"
            )
        return mode(fn) if callable(fn) else mode

    def __init__(self, fn=None):
        pass

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} decorates functions, got {fn!r}")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator: ops inside record no graph (inference, optimizer steps)."""

    enabled = False


class enable_grad(_GradMode):
    """Context manager / decorator: turn graph recording back on inside ``no_grad``."""

    enabled = True


class Context:
    """What one call of a Function remembers for its backward pass.

    ``needs_input_grad[i]`` says whether forward argument ``i`` needs a gradient; arrays saved with
    ``save_for_backward`` come back as ``saved_tensors``; any other attribute may be set freely.
    """

    def __init__(self, fn, inputs, needs_input_grad):
        self.fn = fn
        self.inputs = inputs  # per forward argument: the Tensor, or None for non-Tensor arguments
        # Where each input's gradient goes: the (context, output index) that made it, taken now,
        # because an in-place op later gives the same Tensor object a new place in the graph.
        self.edges = tuple(None if t is None else (t._ctx, t._out_index) for t in inputs)
        self.needs_input_grad = needs_input_grad
        self.outputs_meta = ()  # (shape, dtype) per output, to fill in gradients of unused outputs
        self._saved = ()
        self._versions = ()  # versions of the tensors whose memory the saved arrays are
        self._freed = False

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE.format(name=self.fn.__name__))
        views.check(self.fn.__name__, self._versions)
        return self._saved

    def free(self):
        """Drop saved arrays and graph links once backward has used them (saves memory)."""
        self._saved = self._versions = ()
        self._freed = True
        self.inputs = tuple(None for _ in self.inputs)
        self.edges = self.inputs


_FREED_MESSAGE = (
    "backward through {name} a second time: its saved values were freed by the first backward. "
    "Call .backward(retain_graph=True) the first time if you need to backpropagate twice."
)


class Variable:
    """What the engine sees of a tensor: ``data`` (a raw array), ``requires_grad``, the
    ``Context`` that produced it (``_ctx``; None for a leaf) and its output index (``_out_index``),
    ``_accumulate_grad(g)``, and ``_wrap(array)``, which makes one around an op's output.

    ``minidense.Tensor`` is the Variable of this package. It is defined in tensor.py, above this
    module, because a tensor's methods run ops and the ops are Functions: so the engine tells
    tensors apart by this base class, and wraps an op's outputs in the class of its inputs.
    """


class Function:
    """Base class of differentiable ops: subclass and write ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    # A view op (reshape, permute, basic indexing) sets this to a function of its non-tensor
    # arguments that returns the ``views.Step`` it made (or None when the output is a copy).
    view_step = None

    @classmethod
    def apply(cls, *args):
        """Run forward on raw arrays, wrap the outputs as Tensors, record the graph."""
        tensors = tuple(a if isinstance(a, Variable) else None for a in args)
        kind = next((type(t) for t in tensors if t is not None), None)
        if kind is None:
            raise TypeError(f"{cls.__name__}.apply needs at least one Tensor argument")
        _check_inputs(cls, tensors)
        needs = tuple(t is not None and t.requires_grad for t in tensors)
        track = is_grad_enabled() and any(needs)
        ctx = Context(cls, tensors, needs)
        raw = [a.data if t is not None else a for a, t in zip(args, tensors, strict=True)]
        out = cls.forward(ctx, *raw)
        outs = out if isinstance(out, tuple) else (out,)
        results = tuple(kind._wrap(o) for o in outs)
        if track:
            ctx.outputs_meta = tuple((o.shape, o.dtype) for o in outs)
            for i, t in enumerate(results):
                if t.dtype.kind == "f":
                    t.requires_grad = True
                    t._ctx = ctx
                    t._out_index = i
            if ctx._saved:
                ctx._versions = views.snapshot(ctx._saved, tensors, results)
        if cls.view_step is not None:
            step = cls.view_step(*args[1:])
            if step is not None:
                views.make_view(results[0], tensors[0], step, is_grad_enabled())
        return results if isinstance(out, tuple) else results[0]


def _check_inputs(fn, tensors):
    """One device per op; no silent float32/float64 mixing (it would lose precision unseen)."""
    present = [(i, t) for i, t in enumerate(tensors) if t is not None]
    devices = {t.device for _, t in present}
    if len(devices) > 1:
        where = ", ".join(f"argument {i} on {t.device!r}" for i, t in present)
        raise ValueError(
            f"{fn.__name__}: all tensors must be on one device, got {where}; move them with .to()"
        )
    floats = {t.dtype for _, t in present if t.dtype.kind == "f"}
    if len(floats) > 1:
        where = ", ".join(f"argument {i} is {t.dtype}" for i, t in present if t.dtype.kind == "f")
        raise TypeError(
            f"{fn.__name__}: mixed float dtypes ({where}); convert explicitly with "
            ".float() or .double() so no precision is lost silently"
        )


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get ``shape`` back."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _topological_order(root_ctx):
    """Contexts reachable from ``root_ctx``, each after every context that consumes its outputs.

    Iterative, because deep nets overflow Python's recursion limit. Order matters: a node used
    twice must have collected the gradient from *all* its consumers before passing it on.
    """
    post_order, visited = [], set()
    stack = [(root_ctx, False)]
    while stack:
        ctx, children_done = stack.pop()
        if children_done:
            post_order.append(ctx)
            continue
        if id(ctx) in visited:
            continue
        visited.add(id(ctx))
        stack.append((ctx, True))
        for edge in ctx.edges:
            if edge is not None and edge[0] is not None and id(edge[0]) not in visited:
                stack.append((edge[0], False))
    return post_order[::-1]


def backward(root, grad=None, retain_graph=False):
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not isinstance(retain_graph, bool | np.bool_):
        raise TypeError(f"backward: retain_graph must be True or False, got {retain_graph!r}")
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: create the inputs with "
            "requires_grad=True (and not inside no_grad())"
        )
    if grad is None:
        if root.size != 1:
            raise ValueError(
                f"backward() needs grad= for a non-scalar tensor (shape {root.shape}); "
                "reduce it first, e.g. loss.sum().backward(), or pass grad of the same shape"
            )
        grad = array_module(root.data).ones(root.shape, dtype=root.dtype)
    else:
        if not isinstance(grad, Variable):
            try:
                grad = np.asarray(grad, dtype=root.dtype)
            except (TypeError, ValueError):
                raise TypeError(
                    f"grad must be a Tensor or an array of numbers, got {type(grad).__name__}"
                ) from None
        if isinstance(grad, Variable):
            grad = grad.data
            if grad.dtype != root.dtype:  # as an array gradient is: root.grad keeps root's dtype
                grad = grad.astype(root.dtype)
        grad = move(grad, root.device)
        if tuple(grad.shape) != root.shape:
            raise ValueError(f"grad must have the tensor's shape {root.shape}, got {grad.shape}")
    if root._ctx is None:
        root._accumulate_grad(grad)
        return

    pending = {id(root._ctx): _slots(root._ctx)}
    pending[id(root._ctx)][root._out_index] = grad
    for ctx in _topological_order(root._ctx):
        grads = pending.pop(id(ctx), None)
        if grads is None:
            continue
        if ctx._freed:
            raise RuntimeError(_FREED_MESSAGE.format(name=ctx.fn.__name__))
        for i, (shape, dtype) in enumerate(ctx.outputs_meta):
            if grads[i] is None and dtype.kind == "f":
                xp = array_module(*(g for g in grads if g is not None))
                grads[i] = xp.zeros(shape, dtype=dtype)  # an output nobody used
        input_grads = ctx.fn.backward(ctx, *grads)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.inputs):
            raise RuntimeError(
                f"{ctx.fn.__name__}.backward returned {len(input_grads)} gradients, "
                f"but forward took {len(ctx.inputs)} arguments"
            )
        for t, edge, needs, g in zip(
            ctx.inputs, ctx.edges, ctx.needs_input_grad, input_grads, strict=True
        ):
            if t is None or g is None or not needs:
                continue
            g = unbroadcast(g, t.shape)
            if g.dtype != t.dtype:
                g = g.astype(t.dtype)
            parent, k = edge
            if parent is None:
                if t.requires_grad:  # a leaf (its flag may have been switched off since)
                    t._accumulate_grad(g)
            else:
                slots = pending.setdefault(id(parent), _slots(parent))
                slots[k] = g if slots[k] is None else slots[k] + g
        if not retain_graph:
            ctx.free()


def _slots(ctx):
    return [None] * len(ctx.outputs_meta)
