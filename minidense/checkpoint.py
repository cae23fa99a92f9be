"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

Layout of the archive (plain ``np.savez``, so ``np.load`` can inspect it too)::

    model/<name>                  one array per entry of the model's state dict
    optim/<path>                  every array inside the (nested) optimizer state, e.g.
                                  optim/state/3/exp_avg
    __minidense_checkpoint__      uint8 array holding UTF-8 JSON metadata: format name and
                                  version, epoch, ``extra``, the order of the model keys, and the
                                  optimizer state with its arrays replaced by references
                                  {"__array__": "optim/state/3/exp_avg"}

Nothing is pickled: loading uses ``allow_pickle=False``, so opening a checkpoint from elsewhere
cannot run code. Dict keys in the optimizer state may be strings or ints (per-parameter state is
keyed by index); tuples come back as lists.

Writing goes to a temporary file in the target's directory, which is flushed and fsync'ed and
then renamed over the target with ``os.replace`` (atomic on POSIX and Windows): a crash at any
moment leaves either the old checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import json
import numbers
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT_NAME = "minidense-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "__minidense_checkpoint__"
_ARRAY_REF = "__array__"  # {"__array__": key} stands for an array stored under key
_ITEMS = "__items__"  # {"__items__": [[k, v], ...]} is a dict with some non-string keys


class CheckpointError(ValueError):
    """The file exists but is not a checkpoint this version of minidense can read."""


def _host_array(value, where: str):
    """``value`` as a NumPy array if it is array-like data (ndarray, Tensor, device array),
    else None. Object arrays are refused: they could only be stored by pickling."""
    if isinstance(value, np.ndarray):
        arr = value
    elif hasattr(value, "numpy") and callable(value.numpy):
        arr = np.asarray(value.numpy())  # minidense Tensor (copied to the host if on the GPU)
    elif hasattr(value, "copy_to_host"):
        arr = value.copy_to_host()  # numba device array
    else:
        return None
    if arr.dtype.hasobject:
        raise TypeError(
            f"checkpoint value {where!r} has dtype {arr.dtype}, which cannot be saved without "
            "pickle; store plain numeric arrays"
        )
    return arr


def _encode(value, path: str, arrays: dict):
    """JSON skeleton of a nested optimizer state; arrays move into ``arrays`` under ``path``."""
    arr = _host_array(value, path)
    if arr is not None:
        if path in arrays:
            raise ValueError(
                f"two optimizer-state entries map to the archive key {path!r}; "
                "avoid '/' inside dict keys"
            )
        arrays[path] = arr
        return {_ARRAY_REF: path}
    if isinstance(value, np.generic):  # np.float32(0.9), np.int64(3): plain JSON numbers
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        for k in value:
            if isinstance(k, bool) or not isinstance(k, str | numbers.Integral):
                raise TypeError(f"optimizer-state keys must be str or int, got {k!r} at {path!r}")
            if k in (_ARRAY_REF, _ITEMS):
                raise ValueError(f"optimizer-state key {k!r} at {path!r} is reserved")
        items = [(k if isinstance(k, str) else int(k), v) for k, v in value.items()]
        encoded = [[k, _encode(v, f"{path}/{k}", arrays)] for k, v in items]
        if all(isinstance(k, str) for k, _ in items):
            return dict(encoded)
        return {_ITEMS: encoded}  # JSON would turn int keys into strings; keep them typed
    if isinstance(value, list | tuple):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]
    raise TypeError(
        f"optimizer-state value at {path!r} has unsupported type {type(value).__name__}; "
        "use arrays, numbers, strings, None, lists and dicts"
    )


def _decode(node, arrays: dict):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if set(node) == {_ARRAY_REF}:
            key = node[_ARRAY_REF]
            if key not in arrays:
                raise CheckpointError(f"checkpoint metadata refers to a missing array {key!r}")
            return arrays[key]
        if set(node) == {_ITEMS}:
            return {k: _decode(v, arrays) for k, v in node[_ITEMS]}
        return {k: _decode(v, arrays) for k, v in node.items()}
    return node


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _path(path):
    """``path`` as a str, or a TypeError naming it (os.fspath's own message does not)."""
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None


def save_checkpoint(
    path,
    model_state: dict,
    optimizer_state: dict | None = None,
    epoch: int = 0,
    extra: dict | None = None,
    compress: bool = False,
) -> None:
    """Save a training state to ``path`` (a single ``.npz`` file), atomically.

    Args:
        path: target file; its directory must exist. An existing file is replaced only once the
            new one is completely on disk.
        model_state: ``{name: array}``, e.g. ``model.state_dict()``; Tensors are converted with
            ``.numpy()``.
        optimizer_state: nested dicts/lists of arrays and plain values (step counts, learning
            rates), e.g. ``optimizer.state_dict()``; or None.
        epoch: number of epochs completed (int >= 0).
        extra: anything JSON-serialisable (config, metrics history, RNG seeds).
        compress: zip-deflate the arrays (smaller, slower).
    """
    path = _path(path)
    if not isinstance(model_state, dict):
        raise TypeError(f"model_state must be a dict of arrays, got {type(model_state).__name__}")
    if optimizer_state is not None and not isinstance(optimizer_state, dict):
        raise TypeError(
            f"optimizer_state must be a dict or None, got {type(optimizer_state).__name__}"
        )
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
        raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
    if not isinstance(compress, bool):
        raise TypeError(f"compress must be True or False, got {compress!r}")

    arrays: dict[str, np.ndarray] = {}
    for name, value in model_state.items():
        if not isinstance(name, str):
            raise TypeError(f"model_state keys must be str, got {name!r}")
        arr = _host_array(value, name)
        if arr is None:
            if isinstance(value, numbers.Number | np.generic):
                arr = np.asarray(value)  # e.g. BatchNorm's num_batches_tracked as a Python int
            else:
                raise TypeError(
                    f"model_state[{name!r}] must be an array, got {type(value).__name__}"
                )
        arrays[f"model/{name}"] = arr
    optim = None if optimizer_state is None else _encode(optimizer_state, "optim", arrays)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "model_keys": list(model_state),
        "optimizer": optim,
        "extra": extra,
    }
    try:
        text = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from None
    arrays[METADATA_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    _atomic_write(path, arrays, compress)


def _atomic_write(path: str, arrays: dict, compress: bool) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot save checkpoint {path!r}: directory {directory!r} does not exist "
            "(create it first, e.g. os.makedirs(directory, exist_ok=True))"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save checkpoint: {path!r} is a directory")
    try:
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
        )
    except PermissionError as e:
        raise PermissionError(
            f"cannot save checkpoint: directory {directory!r} is not writable ({e.strerror})"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode an ordinary new file would have.
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        # Never leave a half-written temp file behind (also on KeyboardInterrupt).
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns ``{"model": {name: array}, "optimizer": nested state or None, "epoch": int,
    "extra": ..., "format_version": int}``. Raises FileNotFoundError when ``path`` is missing and
    :class:`CheckpointError` when it is not a readable minidense checkpoint.
    """
    path = _path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint path {path!r} is a directory, not a file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise CheckpointError(_bad(path, "it holds a single .npy array, not an .npz archive"))
    if not magic.startswith(b"PK"):  # every zip file (hence .npz) starts with "PK"
        what = "it is empty" if not magic else "it is not an .npz (zip) archive"
        raise CheckpointError(_bad(path, what))
    # Damage can surface as any of these: zipfile raises NotImplementedError for a flipped
    # compression method, flag bit or version field, RuntimeError for a flipped "encrypted" bit,
    # KeyError or struct.error for a mangled directory entry.
    unreadable = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError,
                  NotImplementedError, RuntimeError, KeyError, struct.error)  # fmt: skip
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except PermissionError:
        raise
    except unreadable as e:
        raise CheckpointError(_bad(path, f"it is truncated or corrupt ({e})")) from e

    if METADATA_KEY not in arrays:
        raise CheckpointError(
            _bad(path, f"it is an .npz archive without the {METADATA_KEY!r} entry (a foreign file)")
            + " (a plain archive of arrays can be read with np.load)"
        )
    try:
        meta = json.loads(arrays.pop(METADATA_KEY).tobytes().decode("utf-8"))
        name, version = meta["format"], meta["format_version"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(_bad(path, f"its metadata is unreadable ({e})")) from e
    if name != FORMAT_NAME:
        raise CheckpointError(_bad(path, f"its format is {name!r}, expected {FORMAT_NAME!r}"))
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path!r} uses format version {version}, but this minidense reads "
            f"versions up to {FORMAT_VERSION}; upgrade minidense to load it"
        )

    model_keys, epoch = meta.get("model_keys", []), meta.get("epoch", 0)
    if not isinstance(model_keys, list) or isinstance(epoch, bool) or not isinstance(epoch, int):
        raise CheckpointError(_bad(path, "its metadata is unreadable (model_keys or epoch)"))
    model = {}
    for name in model_keys:
        key = f"model/{name}"
        if key not in arrays:
            raise CheckpointError(_bad(path, f"the model array {key!r} is missing"))
        model[name] = arrays[key]
    optimizer = meta.get("optimizer")
    return {
        "model": model,
        "optimizer": None if optimizer is None else _decode(optimizer, arrays),
        "epoch": epoch,
        "extra": meta.get("extra"),
        "format_version": version,
    }


def _bad(path: str, why: str) -> str:
    return (
        f"cannot load checkpoint {path!r}: {why}. Pass a file written by "
        "minidense.checkpoint.save_checkpoint; if it was damaged (e.g. an interrupted copy), "
        "use an earlier checkpoint"
    )
