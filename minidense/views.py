"""Views and version counters: what an in-place write must keep consistent.

A *view* is a tensor made from another by ``reshape``/``view``/``flatten``/``squeeze``/
``unsqueeze``, ``permute``/``transpose``/``.T`` or basic indexing (ints, slices, ``None``, ``...``).
As in PyTorch, a view and its base hold one set of values and one version counter: a write through
either is seen by both. Memory cannot promise that here: NumPy copies where a view is impossible
(reshaping a transposed array), and a ``CudaArray`` is always contiguous, so on the GPU a transpose
or a strided slice is a copy. So every view remembers its *chain* of view steps from its root
tensor, and ``write`` puts new values into the root through that chain and replays the chain into
every live view whose memory is not the root's. Advanced (integer or bool array) indexing makes a
copy, not a view, as in PyTorch.

Version counters: every in-place op bumps the counter of the tensor it writes (shared by the
tensor's root, its views and its ``detach()``-ed aliases). An op that saves arrays for backward
remembers the versions of the tensors whose memory they are (``snapshot``); backward refuses to use
them once a version has moved on (``check``), because the values it needs were overwritten.
"""

import weakref

import numpy as np

from .backend import shares_memory

__all__ = ["Family", "Step", "family", "make_view", "write", "snapshot", "check"]


class Family:
    """The version counter of one storage, shared by a root tensor, its views and its detached
    aliases, and (weakly) the live views to refresh after a write."""

    __slots__ = ("version", "_views", "_added")

    def __init__(self):
        self.version = 0
        self._views = []
        self._added = 0

    def add(self, view):
        self._views.append(weakref.ref(view))
        self._added += 1
        if self._added % 64 == 0:  # a parameter is viewed in every forward: drop the dead ones
            self._views = [r for r in self._views if r() is not None]

    def views(self):
        return [v for v in (r() for r in self._views) if v is not None]

    # Weak references can be neither pickled nor deep-copied: the live views travel as they are,
    # so a copied view stays a view of the copied root (written through it, refreshed from it).
    def __getstate__(self):
        return self.version, self.views(), self._added

    def __setstate__(self, state):
        self.version, views, self._added = state
        self._views = [weakref.ref(v) for v in views]


def family(t):
    """``t``'s version family, created on first need (most tensors are never viewed or saved)."""
    if t._family is None:
        t._family = Family()
    return t._family


class Step:
    """One view op, replayable on raw arrays (``get`` makes the view, ``put`` writes it back)
    and on tensors (``fn.apply(t, arg)``, recorded in the graph)."""

    __slots__ = ("kind", "arg", "fn")

    def __init__(self, kind, arg, fn):
        self.kind, self.arg = kind, arg  # "reshape" shape | "permute" axes | "index" basic index
        self.fn = fn  # the view op's Function

    def get(self, a):
        if self.kind == "reshape":
            return a.reshape(self.arg)
        if self.kind == "permute":
            return a.transpose(self.arg)
        return a[self.arg]

    def put(self, a, sub):
        """Write ``sub`` (the view's new values) into its region of ``a``."""
        if self.kind == "reshape":
            a[...] = sub.reshape(a.shape)
        elif self.kind == "permute":
            a[...] = sub.transpose(tuple(np.argsort(self.arg)))
        else:
            a[self.arg] = sub


def replay(a, chain):
    for step in chain:
        a = step.get(a)
    return a


def write_chain(a, chain, value):
    """Write ``value`` into the region of array ``a`` that ``chain`` selects."""
    if not chain:
        a[...] = value
        return
    sub = chain[0].get(a)
    write_chain(sub, chain[1:], value)
    if not shares_memory(sub, a):  # the step copied: put the updated copy back
        chain[0].put(a, sub)


def make_view(out, base, step, differentiable):
    """Mark ``out``, just made from ``base`` by ``step``, as a view of ``base``'s root.

    A view made under ``no_grad()``, or of a view that is not differentiable (made under
    ``no_grad()`` or of a ``detach()``-ed view), is not differentiable: in-place ops through it
    are refused while a graph is recorded."""
    if base._base is not None:
        out._base, out._chain = base._base, base._chain + (step,)
        out._view_grad = differentiable and base._view_grad
    else:
        out._base, out._chain, out._view_grad = base, (step,), differentiable
    out._family = family(base)
    out._family.add(out)


def detached(t, alias):
    """Make ``alias`` (a new tensor on ``t``'s memory) share ``t``'s storage, not its graph."""
    alias._family = family(t)
    if t._base is not None:  # a view: writes through the alias must still reach the root
        alias._base, alias._chain, alias._view_grad = t._base, t._chain, False
        alias._family.add(alias)
    return alias


def write(t, value):
    """Write ``value`` (an array broadcastable to ``t.shape``, in ``t``'s dtype) into ``t``'s
    storage: its root, ``t`` itself and every live view of the family; bump the version."""
    if t._base is None:
        t.data[...] = value
    else:
        root = t._base.data
        write_chain(root, t._chain, value)
        if not shares_memory(t.data, root):
            t.data[...] = value
    written(t)


def written(t):
    """After ``t``'s storage was written: bump the version, refresh the views that are copies."""
    fam = family(t)
    fam.version += 1
    for v in fam.views():
        if v is not t and v._base is not None and not shares_memory(v.data, v._base.data):
            v.data[...] = replay(v._base.data, v._chain)


def replace_storage(t, array):
    """``t.data = array``: ``t`` gets new storage (and its own version family); views of the old
    storage stay views of it, through a stand-in root that keeps ``t``'s old graph place."""
    fam = t._family
    if fam is not None:
        stand_in = None
        for v in fam.views():
            if v._base is t:
                if stand_in is None:
                    stand_in = t.detach()
                    stand_in._ctx, stand_in._out_index = t._ctx, t._out_index
                    stand_in.requires_grad = t.requires_grad
                v._base = stand_in
    t._data, t._family, t._base, t._chain, t._view_grad = array, None, None, (), True


# ------------------------------------------------------------------------ saved-array versions


def snapshot(saved, inputs, outputs):
    """(family, version, description) for each input or output tensor whose memory a saved
    array is, so that ``check`` can tell later whether it was overwritten in place."""
    found = []
    for s in saved:
        if not hasattr(s, "shape") or not getattr(s, "size", 0):
            continue
        for kind, tensors in (("input", inputs), ("output", outputs)):
            for i, t in enumerate(tensors):
                if t is not None and (s is t.data or shares_memory(s, t.data)):
                    found.append((family(t), family(t).version, kind, i, t.shape, t.dtype))
    return found


def check(name, versions):
    """RuntimeError (PyTorch's words) if a saved tensor of op ``name`` was modified in place."""
    for fam, expected, kind, i, shape, dtype in versions:
        if fam.version != expected:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{dtype} tensor of shape {shape}], which is {kind} {i} of "
                f"{name}, is at version {fam.version}; expected version {expected} instead. "
                "Hint: do the in-place update after backward(), or on a clone() (x = x.clone())"
            )
