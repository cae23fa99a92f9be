"""What every training command shares: resumable state, the finite-loss guard, the run folder."""

import json
import math
import os

import numpy as np

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..nn import Module
from ..tensor import default_generator

CHECKPOINT = "checkpoint.npz"


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; raised instead of training through it."""


def fast_mode():
    """``MINIDENSE_FAST=1`` shrinks data and schedules (CI, notebooks in tests)."""
    return os.environ.get("MINIDENSE_FAST", "0") == "1"


def size_or_default(name, value, default):
    """``value`` checked as an int >= 1, or ``default`` when it is None: an explicit 0 is an
    error, not a silent switch to the preset."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (or None for the preset), got {value!r}")
    return int(value)


def check_flags(fn, **flags):
    """Switches such as ``resume``, ``progress`` and ``plots`` must be True or False (a string such
    as "no" would silently mean True)."""
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{fn}: {name} must be True or False, got {value!r}")


def check_choice(fn, name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def check_evaluation(model, dataset, batch_size, fn):
    """An evaluation's arguments: a Module, a dataset that knows its ``num_classes``, a size."""
    if not isinstance(model, Module):
        raise TypeError(f"{fn}: model must be an nn.Module, got {type(model).__name__}")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "num_classes")):
        raise TypeError(
            f"{fn}: dataset must be a dataset with num_classes (e.g. ShapesSemantic), got "
            f"{type(dataset).__name__}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"{fn}: batch_size must be an int >= 1, got {batch_size!r}")


def check_finite(losses, step, epoch):
    """Raise NonFiniteLossError naming the step and the loss term that went NaN/Inf."""
    for name, value in losses.items():
        v = float(value.item() if hasattr(value, "item") else value)
        if not math.isfinite(v):
            raise NonFiniteLossError(
                f"loss term {name!r} is {v} at epoch {epoch + 1}, step {step + 1}: training stopped "
                "so it does not run on with broken weights. Lower the learning rate, or check the "
                "inputs for NaN/Inf; the last good checkpoint is kept."
            )


RESUME_HINT = "pass --resume to continue it, or choose another --out"


def check_run_dir(out_dir, resume, hint=RESUME_HINT):
    """Before anything is written: ``resume`` needs a checkpoint in ``out_dir``, and a fresh run
    must not replace one (nothing a user saved is lost); ``hint`` says what to do instead."""
    if out_dir is not None:
        _check_out(out_dir)
    has_checkpoint = out_dir is not None and os.path.exists(os.path.join(out_dir, CHECKPOINT))
    if resume and not has_checkpoint:
        where = "" if out_dir is None else f"; {out_dir!r} has none"
        raise ValueError(f"--resume needs an --out directory that holds a {CHECKPOINT}{where}")
    if not resume and has_checkpoint:
        raise ValueError(f"{out_dir} holds a checkpoint from an earlier run: {hint}")


def _check_out(out_dir):
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(f"out must be a folder path (str), got {type(out_dir).__name__}")


def prepare_out_dir(out_dir):
    """Create ``out_dir`` (and parents) and check it is writable, with a message that says so."""
    _check_out(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"--out: cannot create the output directory {out_dir!r}: {e.strerror}"
        ) from None
    if not os.access(out_dir, os.W_OK):
        raise ValueError(f"--out: the output directory {out_dir!r} is not writable")
    return out_dir


def as_saved(obj):
    """``obj`` as a run's JSON stores it (tuples become lists), so that a configuration made now
    compares equal to the one read back from a checkpoint or a results file."""
    return json.loads(json.dumps(obj))


def save_run(out_dir, model, optimizer, epoch, history, config, scheduler=None):
    """Atomically write the state after ``epoch`` completed epochs (model, optimizer, history,
    the default generator's state), so a resumed run continues exactly."""
    extra = {
        "history": history,
        "config": config,
        "rng": default_generator().bit_generator.state,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
    }
    save_checkpoint(os.path.join(out_dir, CHECKPOINT), model.state_dict(), optimizer.state_dict(),
                    epoch=epoch, extra=extra)  # fmt: skip
    with open(os.path.join(out_dir, "history.json"), "w") as f:
        json.dump(history, f, indent=1)


def load_run(out_dir, model, optimizer, config, scheduler=None):
    """Restore a run saved by ``save_run``; returns (completed epochs, history).

    A key of ``config`` that the checkpoint lacks (saved by an older version) does not clash."""
    path = os.path.join(out_dir, CHECKPOINT)
    ckpt = load_checkpoint(path)
    extra = ckpt.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    saved = extra.get("config")
    saved = saved if isinstance(saved, dict) else {}
    clashes = {k: (saved[k], v) for k, v in config.items() if k in saved and saved[k] != v}
    if clashes:
        detail = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in clashes.items())
        raise ValueError(
            f"--resume: the checkpoint in {out_dir!r} is from another configuration ({detail})"
        )
    try:
        model.load_state_dict(ckpt["model"])
        if ckpt.get("optimizer"):
            optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and extra.get("scheduler"):
            scheduler.load_state_dict(extra["scheduler"])
        if extra.get("rng"):
            default_generator().bit_generator.state = extra["rng"]
    except (KeyError, ValueError, TypeError, IndexError) as e:
        why = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() quotes
        raise CheckpointError(
            f"--resume: {path!r} is from another model, or was not saved by a training command, "
            f"so this run cannot continue from it ({why}); choose another --out"
        ) from e
    return int(ckpt["epoch"]), extra.get("history", [])


def to_numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
