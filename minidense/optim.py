"""Optimizers (SGD, Adam, AdamW), learning-rate schedules and gradient clipping.

Every optimizer updates each parameter in place from ``p.grad`` (``p.sub_(...)`` under
``no_grad()``, so the parameter's version moves on and a graph that saved the old value refuses a
later backward) and keeps its per-parameter state as arrays indexed by the parameter's position,
so ``state_dict()`` can be checkpointed as plain arrays.
"""

import math
import numbers
from collections.abc import Mapping

import numpy as np

from . import checks
from .autograd import no_grad
from .backend import array_module, device_of, move
from .ops.update import fused_adam_, sum_of_squares
from .tensor import Tensor

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineLR", "WarmupCosine",
    "clip_grad_norm_",
]  # fmt: skip


class Optimizer:
    def __init__(self, params, lr, defaults):
        if (
            isinstance(params, Tensor | str | bytes)
            or hasattr(params, "named_parameters")
            or not hasattr(params, "__iter__")
        ):
            raise TypeError(
                f"params must be an iterable of Parameters, got a {type(params).__name__}; "
                "pass model.parameters()"
            )
        params = list(params)
        if not params:
            raise ValueError("params: optimizer got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}] must be a Tensor/Parameter, got {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"params[{i}] must be floating point, got {p.dtype}")
        seen = {}
        for i, p in enumerate(params):
            # A parameter listed twice would be stepped twice per step() (and twice decayed).
            if id(p) in seen:
                raise ValueError(
                    f"params[{i}] is the same Parameter as params[{seen[id(p)]}]; list each "
                    "parameter once (model.parameters() already does)"
                )
            seen[id(p)] = i
        if isinstance(lr, bool) or not (
            isinstance(lr, int | float) and lr >= 0 and math.isfinite(lr)
        ):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        self.params = params
        self.lr = float(lr)
        self.defaults = dict(defaults, lr=self.lr)
        self.state = {}  # parameter index → {name: array}
        self.step_count = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _trainable(self):
        for i, p in enumerate(self.params):
            if p.grad is not None and p.requires_grad:
                g = p.grad.data
                if device_of(g) != p.device:
                    raise ValueError(
                        f"params[{i}] is on {p.device!r} but its grad is on {device_of(g)!r}: "
                        "all tensors must be on one device; move the model with .to() (it "
                        "moves the gradients too)"
                    )
                # A gradient in another dtype (set by hand) is used in the parameter's, as
                # backward() would have computed it.
                yield i, p, (g if g.dtype == p.dtype else g.astype(p.dtype))

    def step(self):
        # Everything that can fail is checked for every parameter before anything is updated,
        # so a failed step leaves the parameters, the state and the step count as they were.
        trainable = list(self._trainable())
        for i, p, _ in trainable:
            state = self.state.setdefault(i, {})
            for name, v in state.items():
                # After model.double()/.to("cuda") the state follows the parameter's dtype and
                # device, as load_state_dict makes it: ``m += g`` would silently round float64
                # into float32, or mix devices.
                if name != "step" and (v.dtype != p.dtype or device_of(v) != p.device):
                    state[name] = _state_array(v, name, p)
        self.step_count += 1
        with no_grad():
            for i, p, g in trainable:
                self._update(i, p, g, self.state[i])

    def _update(self, i, p, g, state):
        raise NotImplementedError

    def state_dict(self):
        """{"hyper": {...}, "step": n, "state": {index: {name: array}}} — plain, checkpointable
        host arrays (copies), whatever device the parameters are on."""
        return {
            "hyper": dict(self.defaults, lr=self.lr),
            "step": self.step_count,
            "state": {
                str(i): {k: np.array(move(v, "cpu"), copy=True) for k, v in s.items()}
                for i, s in self.state.items()
            },  # fmt: skip
        }

    def load_state_dict(self, state_dict):
        sd = state_dict
        if not isinstance(sd, Mapping):
            raise TypeError(
                f"load_state_dict: state_dict must be the dict optimizer.state_dict() returns, "
                f"got {type(sd).__name__}"
            )
        state = sd.get("state", {})
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: 'state' must be a dict, got {type(state).__name__}")
        for key, s in state.items():
            i = int(key)
            if not 0 <= i < len(self.params):
                raise ValueError(
                    f"optimizer state names parameter {i}, but this optimizer has "
                    f"{len(self.params)} (from a different model?)"
                )
            for name, v in s.items():
                if np.ndim(v) and np.shape(v) != self.params[i].shape:
                    raise ValueError(
                        f"optimizer state {name!r} of parameter {i} has shape {np.shape(v)}, "
                        f"the parameter has {self.params[i].shape}"
                    )
        self.state = {
            int(k): {n: _state_array(v, n, self.params[int(k)]) for n, v in s.items()}
            for k, s in state.items()
        }
        self.step_count = int(sd.get("step", 0))
        self.lr = float(sd.get("hyper", {}).get("lr", self.lr))


def _state_array(value, name, param):
    """A state entry (a copy, from any device): the step count stays a host int64, the rest joins
    the parameter's dtype and device."""
    value = move(value, "cpu")
    if name == "step":
        return np.array(value, dtype=np.int64)
    return move(np.array(value, dtype=param.dtype), param.device)


class SGD(Optimizer):
    """v ← μ·v + (g + λ·p);  p ← p − lr·v   (nesterov: p ← p − lr·(g + λp + μ·v))"""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        checks.number(momentum, "SGD", "momentum", lo=0)
        checks.number(weight_decay, "SGD", "weight_decay", lo=0)
        checks.flag(nesterov, "SGD", "nesterov")
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        super().__init__(params, lr, dict(momentum=momentum, weight_decay=weight_decay,
                                          nesterov=nesterov))  # fmt: skip
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def _update(self, i, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = g.copy()  # PyTorch starts the buffer at g
            else:
                state["velocity"] *= self.momentum
                state["velocity"] += g
            v = state["velocity"]
            g = g + self.momentum * v if self.nesterov else v
        p.sub_(Tensor._wrap(g), alpha=self.lr)


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε)   (bias-corrected)

    ``weight_decay`` is L2 added to the gradient (Adam); AdamW decays the weights directly.
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        name = type(self).__name__
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair of numbers in [0, 1), got {betas!r}")
        for b in betas:
            if checks.number(b, name, "betas", lo=0, hi=1) == 1:
                raise ValueError(f"{name}: betas must be in [0, 1), got {betas}")
        checks.number(eps, name, "eps", lo=0, lo_open=True)
        checks.number(weight_decay, name, "weight_decay", lo=0)
        super().__init__(params, lr, dict(betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay

    def _update(self, i, p, g, state):
        b1, b2 = self.betas
        if "exp_avg" not in state:
            xp = array_module(p.data)
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] = np.zeros((), dtype=np.int64)  # 0-d, so the state stays all arrays
        state["step"] += 1
        t = int(state["step"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # One parallel pass per parameter where the arrays allow it (the formula below walks
        # each about ten times on one core: 12% of a Mask R-CNN step); the same bits.
        hyper = (self.lr, self.betas, self.eps, self.weight_decay, t, self.decoupled)
        if fused_adam_(p, g, m, v, *hyper):
            return
        if self.weight_decay and not self.decoupled:
            g = g + self.weight_decay * p.data
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        if self.weight_decay and self.decoupled:
            p.mul_(1 - self.lr * self.weight_decay)
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        sqrt = array_module(v_hat).sqrt
        p.sub_(Tensor._wrap(m_hat / (sqrt(v_hat) + self.eps)), alpha=self.lr)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p ← p·(1 − lr·λ) before the step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


# ---------------------------------------------------------------------------- schedules
class LRScheduler:
    """Sets ``optimizer.lr`` from the step count: call ``step()`` once per iteration (or epoch)."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step):
        raise NotImplementedError

    def step(self):
        """Advance one step and set the optimizer's lr; returns it."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr

    def state_dict(self):
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, state_dict):
        sd = state_dict
        if not isinstance(sd, Mapping) or not {"last_step", "base_lr"} <= set(sd):
            raise TypeError(
                f"load_state_dict: state_dict must be the dict scheduler.state_dict() returns "
                f"(last_step, base_lr), got {sd!r}"
            )
        self.last_step, self.base_lr = int(sd["last_step"]), float(sd["base_lr"])
        self.optimizer.lr = self.lr_at(self.last_step)


class StepLR(LRScheduler):
    """lr = base·γ^⌊step/step_size⌋"""

    def __init__(self, optimizer, step_size, gamma=0.1):
        checks.integer(step_size, "StepLR", "step_size", lo=1)
        checks.number(gamma, "StepLR", "gamma", lo=0, lo_open=True)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class WarmupCosine(LRScheduler):
    """Linear warm-up from ``warmup_factor·base`` over ``warmup_steps``, then cosine decay from
    base to ``min_lr`` at ``total_steps`` (held there afterwards)."""

    def __init__(self, optimizer, total_steps, warmup_steps=0, warmup_factor=0.1, min_lr=0.0):
        name = type(self).__name__
        checks.integer(total_steps, name, "total_steps", lo=1)
        checks.integer(warmup_steps, name, "warmup_steps", lo=0)
        checks.number(warmup_factor, name, "warmup_factor", lo=0)
        checks.number(min_lr, name, "min_lr", lo=0)
        if warmup_steps > total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps <= total_steps and total_steps > 0, got "
                f"warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.warmup_factor, self.min_lr = warmup_factor, min_lr
        super().__init__(optimizer)

    def lr_at(self, step):
        if step < self.warmup_steps:
            f = self.warmup_factor + (1 - self.warmup_factor) * step / self.warmup_steps
            return self.base_lr * f
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class CosineLR(WarmupCosine):
    """Cosine decay without warm-up."""

    def __init__(self, optimizer, total_steps, min_lr=0.0):
        super().__init__(optimizer, total_steps, 0, 1.0, min_lr)


def clip_grad_norm_(params, max_norm):
    """Scale gradients in place so their global L2 norm is at most ``max_norm``; returns the norm
    before clipping (inf/nan norms are returned unchanged so the caller can stop training)."""
    if not (isinstance(max_norm, numbers.Real) and max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"clip_grad_norm_: max_norm must be a finite number > 0, got {max_norm!r}")
    if isinstance(params, Tensor):
        params = [params]
    if isinstance(params, str | bytes) or not hasattr(params, "__iter__"):
        raise TypeError(
            f"clip_grad_norm_: params must be a Tensor or an iterable of them, got "
            f"{type(params).__name__}"
        )
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):  # skipped silently, a gradient would go unclipped
            raise TypeError(
                f"clip_grad_norm_: params[{i}] must be a Tensor, got {type(p).__name__}"
            )
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(sum_of_squares(g.data) for g in grads))
    if math.isfinite(total) and total > max_norm > 0:
        scale = max_norm / (total + 1e-6)
        with no_grad():
            for g in grads:
                g.mul_(scale)
    return total
