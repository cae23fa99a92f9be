"""What may change a tensor after it is made: in-place ops (``+=``, ``add_``, ``copy_``...), item
assignment, and ``.data`` / ``.grad`` assignment, with PyTorch's safety rules.

- An in-place op writes into the tensor's own storage on its own device (and, for a view, into its
  base and every other view of it: ``minidense.views``). The right-hand side broadcasts to the
  tensor's shape; the result type is the out-of-place op's and must cast to the tensor's dtype
  within its kind (``int_tensor += 0.5`` is refused, as in PyTorch).
- A leaf that requires grad (a Parameter) cannot be changed in place while a graph is recorded:
  update it inside ``no_grad()``. A view made under ``no_grad()`` cannot be changed in place
  while one is.
- Every in-place op bumps the tensor's version; a backward that needs a value overwritten since
  raises (``views.check``).
- While a graph is recorded, an in-place op is recorded too: the old value is cloned (ops that
  saved it keep theirs), and the base takes the place in the graph of "base with the written
  region replaced" (``ViewAssign``, PyTorch's CopySlices); its views follow it.
"""

import numbers
import operator

import numpy as np

from . import views
from .autograd import Function, is_grad_enabled, no_grad
from .backend import array_module, as_array, is_device_array

__all__ = ["Mutation", "Clone", "ViewAssign"]


class Clone(Function):
    """A copy in new memory; the gradient passes unchanged"""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Expand(Function):
    """``x`` broadcast to ``shape``, in new memory; the engine sums the gradient back"""

    @staticmethod
    def forward(ctx, x, shape):
        return array_module(x).broadcast_to(x, shape).copy()

    @staticmethod
    def backward(ctx, g):
        return g, None


class Fill(Function):
    """A tensor like ``x`` holding one number; no gradient reaches ``x``"""

    @staticmethod
    def forward(ctx, x, value):
        return array_module(x).full(x.shape, value, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        return None, None


class ViewAssign(Function):
    """``base`` with the region that ``chain`` selects replaced by ``value``: the region's
    gradient goes to ``value``, the rest to ``base``"""

    @staticmethod
    def forward(ctx, base, value, chain):
        ctx.chain = chain
        out = base.copy()
        views.write_chain(out, chain, value)
        return out

    @staticmethod
    def backward(ctx, g):
        g_base = None
        if ctx.chain and ctx.needs_input_grad[0]:
            g_base = g.copy()
            views.write_chain(g_base, ctx.chain, 0)
        return g_base, views.replay(g, ctx.chain), None


def _regraph_views(root):
    """After ``root`` took a new place in the graph, every differentiable view of it is remade
    from the new root (PyTorch regenerates their grad_fn the same way)."""
    for v in views.family(root).views():
        if v._base is root and v._view_grad:
            t = root
            for step in v._chain:
                t = step.fn.apply(t, step.arg)
            v._ctx, v._out_index, v.requires_grad = t._ctx, t._out_index, t.requires_grad


def _requires_grad(x):
    return isinstance(x, Mutation) and x.requires_grad


def _storage_array(value):
    """The raw array that ``t.data = value`` installs: a Tensor's array or an array as given."""
    if isinstance(value, Mutation):
        return value.data
    if isinstance(value, np.ndarray) or is_device_array(value):
        if value.dtype.kind not in "biuf" or value.dtype == np.float16:
            raise TypeError(
                f"data must be a float32, float64, integer or bool array, got dtype {value.dtype}"
            )
        return as_array(value)  # a raw Numba device array becomes a CudaArray
    raise TypeError(
        f"data must be a Tensor or an array (NumPy or CUDA), got {type(value).__name__}; "
        "to change the values in place use t.copy_(values)"
    )


class Mutation:
    """Mixed into ``Tensor``: in-place ops, item assignment, ``.data``/``.grad`` assignment."""

    _family = None  # version counter and views (``views.Family``), made on first need
    _base = None  # for a view: the root tensor whose values it shows
    _chain = ()  # for a view: the view steps from the root
    _view_grad = True  # for a view: whether it was made while a graph could be recorded

    # ------------------------------------------------------------- attributes
    @property
    def data(self):
        """The raw array (``np.ndarray`` on "cpu", ``CudaArray`` on "cuda"). Assigning replaces the
        storage, as PyTorch's ``.data =`` does (shape, dtype and device may change); it is not
        recorded by autograd. To change the values, use ``t.copy_(values)``."""
        return self._data

    @data.setter
    def data(self, value):
        array = _storage_array(value)
        if self.requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"data: this tensor requires grad, so its data must be floating point, got "
                f"{array.dtype}"
            )
        views.replace_storage(self, array)

    @property
    def grad(self):
        """The gradient that ``backward()`` accumulated (a Tensor like this one), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Mutation):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type "
                    f"{type(value).__name__}; wrap an array with md.tensor(g)"
                )
            if value.shape != self.shape:
                raise ValueError(
                    f"assigned grad has shape {value.shape}, but the tensor has {self.shape}"
                )
            if value.dtype != self.dtype:
                raise TypeError(
                    f"assigned grad has dtype {value.dtype}, but the tensor is {self.dtype}; "
                    f"convert it with .astype(np.{self.dtype})"
                )
            if value.device != self.device:
                raise ValueError(
                    f"assigned grad is on {value.device!r}, but the tensor is on "
                    f"{self.device!r}; move it with .to({self.device!r})"
                )
        self._grad = value

    @property
    def _version(self):
        """How many in-place writes this tensor's storage has had."""
        return 0 if self._family is None else self._family.version

    def clone(self):
        """A copy in new memory, recorded in the graph (the gradient passes through)."""
        return Clone.apply(self)

    # ------------------------------------------------------------- in-place ops
    def add_(self, other, alpha=1):
        """self += alpha·other, in place."""
        return self._binary_("add_", other, alpha, operator.add, operator.iadd)

    def sub_(self, other, alpha=1):
        """self -= alpha·other, in place."""
        return self._binary_("sub_", other, alpha, operator.sub, operator.isub)

    def mul_(self, other):
        return self._binary_("mul_", other, 1, operator.mul, operator.imul)

    def div_(self, other):
        """self /= other, in place (true division: an integer tensor refuses it)."""
        return self._binary_("div_", other, 1, operator.truediv, operator.itruediv)

    def pow_(self, exponent):
        """self **= exponent, in place (``**=`` too: without it Python would rebind the name)."""
        return self._binary_("pow_", exponent, 1, operator.pow, operator.ipow)

    __iadd__, __isub__, __imul__, __itruediv__, __ipow__ = add_, sub_, mul_, div_, pow_

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda old: old.clamp(min, max))

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        """Every element set to ``value`` (a number, or a 0-d tensor the gradient flows to)."""
        if isinstance(value, Mutation):
            if value.ndim != 0:
                raise ValueError(
                    f"fill_: value must be a number or a 0-d tensor, got a tensor of shape "
                    f"{value.shape}"
                )
            return self.copy_(value)
        if not isinstance(value, numbers.Real | np.bool_):
            raise TypeError(f"fill_: value must be a number, got {type(value).__name__}")
        if self.dtype.kind in "biu" and not _fits(value, self.dtype):
            raise ValueError(f"fill_: {value} does not fit the {self.dtype} tensor")
        return self._inplace("fill_", lambda old: Fill.apply(old, value))

    def copy_(self, src):
        """The values of ``src`` (broadcast to this shape, cast to this dtype, from any device)."""
        if isinstance(src, numbers.Real | np.bool_):
            return self.fill_(src)  # t[i] = 1e30 on integers is refused there, not wrapped
        src = src if isinstance(src, Mutation) else _numeric(self, src, "copy_", "src")
        if not _broadcastable(src.shape, self.shape):
            raise ValueError(
                f"copy_: src of shape {src.shape} cannot be broadcast to the tensor's shape "
                f"{self.shape}"
            )
        src = src.to(self.device)
        if src.dtype != self.dtype:
            src = src.astype(self.dtype)
        # ``src`` is an operand: when it requires grad, the write is recorded (gradients reach it)
        return self._inplace("copy_", lambda old: Expand.apply(src, old.shape), src)

    def __setitem__(self, index, value):
        """``t[index] = value`` for basic indices (ints, slices, None, ...): ``t[index].copy_``."""
        view = self[index]
        if view._base is None:  # an integer or bool array index made a copy
            raise TypeError(
                f"tensor item assignment takes ints, slices, None and ..., got {index!r}; to "
                "set the elements a mask selects, use F.where(mask, value, t)"
            )
        view.copy_(value)

    # ------------------------------------------------------------- machinery
    def _binary_(self, name, other, alpha, op, iop):
        """``op`` on Tensors (recorded when a graph is); ``iop``, its in-place form on raw arrays,
        for the common case of an update of a tensor's own memory in its own dtype."""
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"{name}: alpha must be a number, got {type(alpha).__name__}")
        operand = _numeric(self, other, name, "other")
        if operand.device != self.device:
            raise ValueError(
                f"{name}: all tensors must be on one device, got the tensor on {self.device!r} "
                f"and other on {operand.device!r}; move one with .to()"
            )
        if operand.dtype.kind == self.dtype.kind == "f" and operand.dtype != self.dtype:
            raise TypeError(
                f"{name}: mixed float dtypes (the tensor is {self.dtype}, other is "
                f"{operand.dtype}); convert other explicitly with .float() or .double()"
            )
        try:
            shape = np.broadcast_shapes(self.shape, operand.shape)
        except ValueError:
            raise ValueError(
                f"{name}: other of shape {operand.shape} does not broadcast with the tensor's "
                f"shape {self.shape}"
            ) from None
        if shape != self.shape:
            raise ValueError(
                f"{name}: output with shape {self.shape} doesn't match the broadcast shape {shape} "
                "of the tensor and other"
            )

        def compute(old):
            a, b = old._pair(operand)
            return op(a, b if alpha == 1 else b * alpha)

        fast = None
        if operand.dtype == self.dtype and (
            self.dtype.kind == "f" or (op is not operator.truediv and alpha == 1)
        ):
            other = operand.data

            def fast(data):  # the same arithmetic as ``compute``, without temporaries
                iop(data, other if alpha == 1 else other * self.dtype.type(alpha))

        return self._inplace(name, compute, operand, fast=fast)

    def _inplace(self, name, compute, *operands, fast=None):
        """Replace this tensor's values by ``compute(old)`` (Tensor in, Tensor out), in place.
        ``fast(data)``, if given, updates a raw array in place to the same values: used when
        nothing is recorded and the tensor owns its memory (not a view)."""
        base = self._base
        view_of = base if base is not None and self._view_grad else None
        graph_root = view_of if view_of is not None else self
        if is_grad_enabled():
            _check_allowed(self, name, view_of)
        recording = is_grad_enabled() and (
            self.requires_grad
            or (base is not None and base.requires_grad)
            or any(map(_requires_grad, operands))
        )
        if recording and base is not None and not self._view_grad:
            raise RuntimeError(
                f"{name}: this view was made under no_grad() (or from a detach()ed view) and is "
                "being modified in place with grad mode enabled; as in PyTorch this is ambiguous "
                "and refused: make the view and the in-place op both inside no_grad() (not "
                "recorded) or both outside it (recorded)"
            )
        storage = base.data if base is not None else self.data
        if isinstance(storage, np.ndarray) and not storage.flags.writeable:
            raise ValueError(
                f"{name}: this tensor's memory is read-only (e.g. a cached dataset sample); "
                "clone() it first"
            )
        if not recording and fast is not None and base is None:
            fast(self.data)
            views.written(self)
            return self
        if not recording:
            with no_grad():
                new = compute(self)
            views.write(self, _result(self, name, new).data)
            return self
        new = _result(self, name, compute(Clone.apply(self)))
        chain = self._chain if view_of is not None else ()
        rebuilt = ViewAssign.apply(graph_root, new, chain)
        views.write(graph_root, rebuilt.data)
        graph_root._ctx, graph_root._out_index = rebuilt._ctx, rebuilt._out_index
        graph_root.requires_grad = rebuilt.requires_grad
        _regraph_views(graph_root)
        return self


def _numeric(t, value, name, arg):
    """A number or array as a Tensor beside ``t`` (Tensors pass), or an error naming ``arg``."""
    try:
        return t._operand(value)
    except TypeError:
        raise TypeError(
            f"{name}: {arg} must be a number, an array or a Tensor, got {type(value).__name__}"
        ) from None


def _fits(value, dtype):
    """Whether the number ``value`` fits the integer or bool ``dtype``: NumPy would wrap it
    silently (1e30 into int32 is -2**31), PyTorch refuses."""
    if not np.isfinite(value):
        return False
    return dtype.kind == "b" or np.iinfo(dtype).min <= value <= np.iinfo(dtype).max


def _broadcastable(shape, target):
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def _check_allowed(t, name, view_of):
    """PyTorch's rule: a leaf that requires grad (or a view of one) is not changed in place
    while a graph is recorded."""
    leaf = t if t.is_leaf and t.requires_grad and t._base is None else None
    if view_of is not None and view_of.is_leaf and view_of.requires_grad:
        leaf = view_of
    if leaf is None:
        return
    what = "a view of a leaf Variable" if leaf is not t else "a leaf Variable"
    raise RuntimeError(
        f"{name}: {what} that requires grad is being used in an in-place operation "
        f"(the leaf: {type(leaf).__name__} of shape {leaf.shape}, {leaf.dtype}); update "
        "parameters inside md.no_grad() (with md.no_grad(): p -= lr * p.grad), or work on a "
        "clone()"
    )


def _result(t, name, new):
    """``new``, checked to fit ``t`` in shape and (within its kind) dtype."""
    if new.shape != t.shape:
        raise ValueError(
            f"{name}: output with shape {t.shape} doesn't match the broadcast shape {new.shape}"
        )
    if new.dtype != t.dtype:
        if not np.can_cast(new.dtype, t.dtype, "same_kind"):
            raise TypeError(
                f"{name}: result type {new.dtype} can't be cast to the desired output type "
                f"{t.dtype} (the tensor's own); use an out-of-place op: t = t.astype(...) + ..."
            )
        new = new.detach().astype(t.dtype)  # integers and bools: no gradient to keep
    return new
