"""Argument checks shared by the public functions and layers.

Each returns the checked value (normalised) or raises a TypeError (wrong kind of thing) or a
ValueError (right kind, wrong value) whose message names the function, the argument, what was
expected and what it got, so that no NumPy, Numba or attribute error reaches a user.
"""

import numbers

import numpy as np

from .tensor import Tensor

__all__ = [
    "tensor", "same_dtype", "number", "integer", "flag", "int_tuple", "pair", "choice",
    "broadcast", "spatial_scale", "sampling_ratio", "float_array", "box_corners",
]  # fmt: skip


def tensor(x, fn, name="input", *, floating=False, ndim=None, layout=""):
    """``x`` if it is a minidense Tensor (floating point, with ``ndim`` dimensions, if asked)."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{fn}: {name} must be a minidense Tensor{' ' + layout if layout else ''}, got "
            f"{type(x).__name__}; wrap arrays with minidense.tensor(x)"
        )
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(
            f"{fn}: {name} must be {ndim}-D{' ' + layout if layout else ''}, got shape {x.shape}"
        )
    return x


def float_array(a, fn, name, ndim=4):
    """The raw array of an op's argument (as its Function's forward sees it) must be float32 or
    float64 with ``ndim`` dimensions."""
    if np.dtype(a.dtype) not in (np.float32, np.float64):
        raise TypeError(f"{fn}: {name} must be float32 or float64, got {a.dtype}")
    if len(a.shape) != ndim:
        layout = {4: " (N, C, H, W)", 1: " (C,)"}.get(ndim, "")
        raise ValueError(f"{fn}: {name} must be {ndim}-D{layout}, got shape {tuple(a.shape)}")
    return a


def same_dtype(x, ref, fn, name, ref_name="input"):
    """A float Tensor ``x`` (a weight, bias or target) must be in ``ref``'s float dtype: say so
    by name, before the op's generic "mixed float dtypes" check would."""
    if not (isinstance(x, Tensor) and isinstance(ref, Tensor)):
        return x
    if x.dtype.kind == ref.dtype.kind == "f" and x.dtype != ref.dtype:
        raise TypeError(
            f"{fn}: {name} is {x.dtype} but {ref_name} is {ref.dtype}; convert one of them "
            f"(e.g. {name}.astype(np.{ref.dtype}), or .float()/.double())"
        )
    return x


def number(v, fn, name, *, lo=-np.inf, hi=np.inf, lo_open=False):
    """A finite real number in [lo, hi] (``lo_open``: (lo, hi]), returned as given. ``fn``
    prefixes the message (empty: none)."""
    prefix = f"{fn}: " if fn else ""
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
        raise TypeError(f"{prefix}{name} must be a number, got {type(v).__name__} ({v!r})")
    if not (np.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
        if hi == np.inf and lo == -np.inf:
            what = ""
        elif hi == np.inf:
            what = f" {'>' if lo_open else '>='} {lo:g}"
        else:
            what = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ValueError(f"{prefix}{name} must be a finite number{what}, got {v!r}")
    return v


def broadcast(fn, **shapes):
    """The broadcast shape of the named ``shapes``, or a ValueError naming them all."""
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = " and ".join(f"{name} of shape {tuple(s)}" for name, s in shapes.items())
        raise ValueError(f"{fn}: {listed} do not broadcast") from None


def integer(v, fn, name, *, lo=None):
    """An int (not a bool), at least ``lo`` if given."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {type(v).__name__} ({v!r})")
    if lo is not None and v < lo:
        raise ValueError(f"{fn}: {name} must be >= {lo}, got {v}")
    return int(v)


def int_tuple(v, fn, name):
    """An int or a sequence of ints, as a tuple (a shape, axes, widths)."""
    parts = (v,) if isinstance(v, numbers.Integral) else v
    if isinstance(parts, str | bytes) or not hasattr(parts, "__iter__"):
        raise TypeError(f"{fn}: {name} must be an int or a sequence of ints, got {v!r}")
    parts = tuple(parts)
    for p in parts:
        if isinstance(p, bool | np.bool_) or not isinstance(p, numbers.Integral):
            raise TypeError(f"{fn}: {name} must be an int or a sequence of ints, got {v!r}")
    return tuple(int(p) for p in parts)


def pair(value, fn, name, minimum=0):
    """``value`` as a pair of ints ``(h, w)``; an int means both (a kernel size, a stride...)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        out = (int(value), int(value))
    elif (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) for v in value
        )
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fn}: {name} must be {what}, got {value!r}")
    return out


def flag(v, fn, name):
    """True or False (a string such as 'no' would silently mean True)."""
    if not isinstance(v, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be True or False, got {v!r}")
    return bool(v)


def choice(v, options, fn, name):
    """One of the strings ``options`` (an array or other non-string is refused by name, not
    compared element by element)."""
    if not isinstance(v, str) or v not in options:
        prefix = f"{fn}: " if fn else ""
        raise ValueError(f"{prefix}{name} must be one of {tuple(options)}, got {v!r}")
    return v


def spatial_scale(v, fn):
    """A RoI op's ``spatial_scale`` (feature cells per image pixel): a positive finite number."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool | np.bool_):
        raise TypeError(f"{fn}: spatial_scale must be a number, got {v!r}")
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{fn}: spatial_scale must be positive and finite, got {v}")
    return float(v)


def sampling_ratio(v, fn):
    """A RoI op's ``sampling_ratio``: an int, samples per bin and axis (<= 0: adaptive)."""
    if not isinstance(v, numbers.Integral) or isinstance(v, bool | np.bool_):
        raise TypeError(f"{fn}: sampling_ratio must be an int (<= 0 means adaptive), got {v!r}")
    return int(v)


def box_corners(rows, fn, name="boxes", columns=""):
    """``rows`` whose last four numbers are corners ``(x1, y1, x2, y2)``, or a ValueError naming
    the first row with x2 < x1 or y2 < y1 (its columns spelled out by ``columns``): a box with
    x2 < x1 has a negative area, a meaningless IoU and, pooled, no cells."""
    bad = (rows[:, -2] < rows[:, -4]) | (rows[:, -1] < rows[:, -3])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{fn}: {name} row {k} is {columns}{rows[k].tolist()}, expected x2 >= x1 and "
            "y2 >= y1; boxes are corners (x1, y1, x2, y2), so convert (x, y, w, h) boxes with "
            "x2 = x + w, y2 = y + h"
        )
    return rows
