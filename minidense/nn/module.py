"""``Module`` and ``Parameter``: the containers that layers and models are built from."""

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ..backend import as_array, device_of, move
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "Sequential", "ModuleList"]


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (always requires grad)."""

    def __init__(self, data, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=False, dtype=dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"a Parameter must be floating point, got {self.dtype}")
        self.requires_grad = True

    def __repr__(self):
        return "Parameter(" + super().__repr__()[len("tensor(") :]


def _few(names, n=6):
    """The first ``n`` names, and how many more (a deep model can miss hundreds of keys)."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return f"{names[:n]}{more}"


def _buffer_array(value, name):
    """A buffer's stored form: the raw array of a Tensor, an array as given (host or device), or
    None."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "copy_to_host") and not isinstance(value, np.ndarray):
        return as_array(value)  # a device array stays on its device
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"buffer {name!r} must be a numeric array, a Tensor or None, got "
            f"{type(value).__name__} (dtype {arr.dtype})"
        )
    return arr


class Module:
    """Base class of layers and models.

    Assigning a Parameter or a Module as an attribute registers it, so ``parameters()``,
    ``state_dict()`` and ``train()``/``eval()`` reach it; ``register_buffer`` registers state that
    is saved but not trained (BatchNorm's running statistics).
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"call super().__init__() in {type(self).__name__}.__init__ first")
        if isinstance(value, Parameter | Module):
            # As PyTorch: the name leaves every other place it lived, including a plain attribute
            # (``self.bias = None``), which ``__getattr__`` would otherwise never get past.
            self._forget(name)
            store = self._parameters if isinstance(value, Parameter) else self._modules
            store[name] = value
        elif name in self._buffers:
            # As PyTorch: assigning to a buffer updates it (None keeps it registered, unsaved).
            self._buffers[name] = _buffer_array(value, name)
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove ``name`` from the registries and the instance's plain attributes."""
        for store in (self._parameters, self._modules, self._buffers, self.__dict__):
            store.pop(name, None)

    def __getattr__(self, name):
        for store in ("_parameters", "_modules", "_buffers"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._modules, self._buffers):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """State saved in ``state_dict`` but not trained; stored as a raw array (``None``: kept
        registered but left out of ``state_dict``, as in PyTorch). Assigning to the name later
        (``bn.running_mean = np.zeros(2)``) updates the buffer."""
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"register_buffer: name must be an identifier string, got {name!r}")
        value = _buffer_array(array, name)
        self._forget(name)
        self._buffers[name] = value

    # ------------------------------------------------------------- traversal
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix="", _seen=None):
        """This module and every submodule, depth first; a module shared by two parents is listed
        once, under its first name (as in PyTorch), so ``train()``/``to()`` visit it once."""
        _seen = set() if _seen is None else _seen
        if id(self) in _seen:
            return
        _seen.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, _seen)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        seen = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if id(p) not in seen:  # a shared parameter is listed once
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for mod_name, m in self.named_modules():
            for name, b in m._buffers.items():
                if b is not None:  # a buffer set to None is not state (as in PyTorch)
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------- modes
    def train(self, mode=True):
        if not isinstance(mode, bool | np.bool_):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move parameters (with their gradients, as PyTorch does) and buffers to ``device``
        ("cpu" or "cuda"), in place."""
        for p in self.parameters():
            p.data = p.detach().to(device).data
            if p.grad is not None:  # else the next optimizer step would mix devices
                p.grad = Tensor._wrap(p.grad.detach().to(device).data)
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = Tensor._wrap(b).to(device).data
        return self

    def double(self):
        """Cast floating parameters and buffers to float64 (for gradient checks)."""
        return self._cast(np.float64)

    def float(self):
        return self._cast(np.float32)

    def _cast(self, dtype):
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None and p.grad.dtype != dtype:  # as PyTorch, grads follow
                p.grad = Tensor._wrap(p.grad.data.astype(dtype))
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    # ------------------------------------------------------------- state
    def state_dict(self):
        """Parameters and buffers by dotted name, as host NumPy arrays (copies)."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = np.array(p.numpy(), copy=True)
        for name, b in self.named_buffers():
            state[name] = np.array(b if isinstance(b, np.ndarray) else b.copy_to_host(), copy=True)
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into this module's parameters and buffers.

        Raises KeyError listing missing and unexpected names (with ``strict``), and ValueError naming
        any entry whose shape differs — before anything is changed, so a failed load leaves the
        module as it was.
        """
        if not isinstance(strict, bool | np.bool_):
            raise TypeError(f"load_state_dict: strict must be True or False, got {strict!r}")
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict expects a dict of arrays by name (e.g. model.state_dict() or "
                f"load_checkpoint(path)['model']), got {type(state).__name__}"
            )
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        own = set(params) | set(buffers)
        missing = sorted(own - set(state))
        unexpected = sorted(set(state) - own)
        if strict and (missing or unexpected):
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: missing keys {_few(missing)}, "
                f"unexpected keys {_few(unexpected)} (is it from a different architecture or "
                "config?)"
            )
        for name in sorted(own & set(state)):  # sorted: the first mismatch reported is stable
            have = params[name].shape if name in params else tuple(buffers[name].shape)
            value = np.asarray(
                state[name].numpy() if isinstance(state[name], Tensor) else state[name]
            )
            if tuple(value.shape) != tuple(have):
                raise ValueError(
                    f"state_dict entry {name!r} has shape {tuple(value.shape)}, but this model's is "
                    f"{tuple(have)} (a checkpoint from a different architecture?)"
                )
            if value.dtype.kind not in "biuf":
                raise TypeError(f"state_dict entry {name!r} is not numeric (dtype {value.dtype})")
        for name in own & set(state):
            value = np.asarray(
                state[name].numpy() if isinstance(state[name], Tensor) else state[name]
            )
            # Loaded values land on the device where the parameter or buffer lives now.
            if name in params:
                p = params[name]
                p.data = move(value.astype(p.dtype), p.device)
            else:
                mod_name, _, buf = name.rpartition(".")
                mod = self._submodule(mod_name)
                old = mod._buffers[buf]
                mod._buffers[buf] = move(value.astype(old.dtype), device_of(old))
        return missing, unexpected

    def _submodule(self, dotted):
        m = self
        for part in filter(None, dotted.split(".")):
            m = m._modules[part]
        return m

    # ------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if not self._modules:
            return lines[0] + ")"
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of Modules whose parameters are registered."""

    def __init__(self, modules=()):
        super().__init__()
        if isinstance(modules, str) or not hasattr(modules, "__iter__"):
            raise TypeError(
                f"ModuleList takes an iterable of Modules, got {type(modules).__name__}"
            )
        for m in modules:
            self.append(m)

    def append(self, m):
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(m).__name__}")
        setattr(self, str(len(self._modules)), m)
        return self

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another (a ModuleList that runs them in turn). A module that
    says it ``fuses_with`` the next one runs both as one op (``forward_fused``): BatchNorm2d
    followed by ReLU, as in every conv → BN → ReLU block."""

    def __init__(self, *modules):
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(
                    f"Sequential: argument {i} must be a Module, got {type(m).__name__}"
                )
        super().__init__(modules)

    def forward(self, x):
        mods = list(self)
        i = 0
        while i < len(mods):
            m = mods[i]
            fuses = getattr(m, "fuses_with", None)
            if i + 1 < len(mods) and fuses is not None and fuses(mods[i + 1]):
                x = m.forward_fused(x)  # e.g. BatchNorm2d + ReLU as one op: same result, faster
                i += 2
            else:
                x = m(x)
                i += 1
        return x
