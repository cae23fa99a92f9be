"""Checkpoints: round trip, atomic replacement, and clear errors on damaged or foreign files."""

import json
import os
import re

import numpy as np
import pytest

import minidense.checkpoint as ckpt
from minidense.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class FakeTensor:
    def __init__(self, a):
        self._a = np.asarray(a)

    def numpy(self):
        return self._a


def model_state():
    return {
        "conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
        "conv1.bias": FakeTensor(np.array([0.5, -1.0], np.float32)),
        "bn.running_var": np.ones(4, np.float64),
        "bn.num_batches_tracked": 7,
    }


def adam_state():
    rng = np.random.default_rng(0)
    return {
        "state": {
            0: {"step": 3, "exp_avg": rng.normal(size=(2, 3)), "exp_avg_sq": rng.random((2, 3))},
            3: {"step": np.int64(3), "exp_avg": rng.normal(size=4).astype(np.float32)},
        },
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 3], "name": None}],
    }


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "last.npz"
    path.parent.mkdir()
    extra = {"config": {"lr": 0.1, "arch": "unet"}, "history": [0.9, 0.5], "seed": np.int64(4)}
    save_checkpoint(path, model_state(), adam_state(), epoch=12, extra=extra)
    out = load_checkpoint(path)
    assert out["epoch"] == 12 and out["format_version"] == ckpt.FORMAT_VERSION
    assert out["extra"] == {"config": {"lr": 0.1, "arch": "unet"}, "history": [0.9, 0.5], "seed": 4}
    ref = model_state()
    assert list(out["model"]) == list(ref)  # order kept
    for name, value in ref.items():
        expected = value.numpy() if isinstance(value, FakeTensor) else np.asarray(value)
        got = out["model"][name]
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    opt, ref_opt = out["optimizer"], adam_state()
    assert set(opt["state"]) == {0, 3}  # int keys stay ints
    for k in (0, 3):
        for name, value in ref_opt["state"][k].items():
            np.testing.assert_array_equal(opt["state"][k][name], value)
        assert opt["state"][k]["exp_avg"].dtype == ref_opt["state"][k]["exp_avg"].dtype
    assert opt["state"][0]["step"] == 3 and isinstance(opt["state"][0]["step"], int)
    assert opt["param_groups"] == [
        {"lr": 1e-3, "betas": [0.9, 0.999], "params": [0, 3], "name": None}
    ]
    # The layout is the documented one and readable with plain NumPy, without pickle.
    with np.load(path, allow_pickle=False) as z:
        assert "optim/state/3/exp_avg" in z.files and "model/conv1.weight" in z.files
        meta = json.loads(z[ckpt.METADATA_KEY].tobytes())
        assert meta["format"] == ckpt.FORMAT_NAME and meta["epoch"] == 12


def test_no_optimizer_and_overwrite(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.zeros(2)})
    save_checkpoint(str(path), {"w": np.ones(3)}, epoch=1)
    out = load_checkpoint(str(path))
    assert out["optimizer"] is None and out["extra"] is None and out["epoch"] == 1
    np.testing.assert_array_equal(out["model"]["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["c.npz"]


def test_crash_during_replace_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.arange(3.0)}, epoch=1)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, {"w": np.zeros(1000)}, epoch=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"], "the temp file must be cleaned up"
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


def test_crash_while_writing_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.arange(3.0)}, epoch=1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.zeros(3)}, epoch=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["c.npz"]
    assert load_checkpoint(path)["epoch"] == 1


def test_new_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.zeros(1)})
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


@pytest.fixture
def good_bytes(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, {"w": np.arange(100.0)}, adam_state(), epoch=3)
    return path.read_bytes()


def _zip_field(offset, value):
    """Damage: set the uint16 at ``offset`` in the last central-directory entry of a zip (2
    bytes of one header, as a bad copy could flip them)."""

    def damage(b):
        b = bytearray(b)
        entry = b.rfind(b"PK\x01\x02")
        b[entry + offset : entry + offset + 2] = value.to_bytes(2, "little")
        return bytes(b)

    return damage


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], "not a readable|truncated or corrupt"),
        (lambda b: b[:-30], "not a readable|truncated or corrupt"),
        (lambda b: b[:300] + bytes([b[300] ^ 0xFF]) + b[301:], "truncated or corrupt"),
        (lambda b: bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8)),
         "not an .npz"),
        (lambda b: b"", "empty"),
        # zipfile raises NotImplementedError or RuntimeError for these, not BadZipFile.
        (_zip_field(10, 99), "truncated or corrupt.*compression method"),
        (_zip_field(8, 0x1), "truncated or corrupt.*encrypted"),
        (_zip_field(8, 0x40), "truncated or corrupt.*encryption"),
        (_zip_field(8, 0x20), "truncated or corrupt.*patched"),
        (_zip_field(6, 99), "truncated or corrupt.*version"),
    ],
    ids=["half", "tail-cut", "flipped-byte", "random-bytes", "empty", "compression-method",
         "encrypted-flag", "strong-encryption-flag", "patched-data-flag", "zip-version"],
)  # fmt: skip
def test_damaged_files(tmp_path, good_bytes, damage, match):
    path = tmp_path / "bad.npz"
    path.write_bytes(damage(good_bytes))
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "earlier checkpoint" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_foreign_files(tmp_path):
    foreign = tmp_path / "plain.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="foreign file"):
        load_checkpoint(foreign)
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match="single .npy array"):
        load_checkpoint(npy)
    other = tmp_path / "other.npz"
    meta = np.frombuffer(json.dumps({"format": "x", "format_version": 1}).encode(), np.uint8)
    np.savez(other, **{ckpt.METADATA_KEY: meta})
    with pytest.raises(CheckpointError, match="expected 'minidense-checkpoint'"):
        load_checkpoint(other)


def test_newer_format_version(tmp_path, monkeypatch):
    path = tmp_path / "future.npz"
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", ckpt.FORMAT_VERSION + 1)
    save_checkpoint(path, {"w": np.zeros(1)})
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="upgrade minidense"):
        load_checkpoint(path)


def test_missing_file_and_bad_directories(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no_dir" / "c.npz", {"w": np.zeros(1)})
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_checkpoint(tmp_path, {"w": np.zeros(1)})
    for bad in (None, 3):  # os.fspath's own message does not say which argument
        with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got"):
            save_checkpoint(bad, {"w": np.zeros(1)})
        with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got"):
            load_checkpoint(bad)


def test_unwritable_directory(tmp_path, monkeypatch):
    # chmod cannot lock out root (tests may run as root in containers), so make mkstemp fail
    # the way it does in a read-only directory.
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ckpt.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError, match=re.escape(str(tmp_path)) + ".*not writable"):
        save_checkpoint(tmp_path / "c.npz", {"w": np.zeros(1)})


def test_bad_values(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match="'head.meta'.*object"):
        save_checkpoint(path, {"head.meta": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match="optim/state/0/buf.*object"):
        save_checkpoint(path, {}, {"state": {0: {"buf": np.array([None, 1], dtype=object)}}})
    with pytest.raises(TypeError, match="model_state\\['w'\\] must be an array"):
        save_checkpoint(path, {"w": "hello"})
    with pytest.raises(TypeError, match="model_state must be a dict"):
        save_checkpoint(path, [np.zeros(1)])
    with pytest.raises(TypeError, match="extra must be JSON-serialisable"):
        save_checkpoint(path, {}, extra={"f": lambda: 0})
    with pytest.raises(TypeError, match="unsupported type set"):
        save_checkpoint(path, {}, {"x": {1, 2}})
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        save_checkpoint(path, {}, epoch=-1)
    with pytest.raises(ValueError, match="same archive key|map to the archive key"):
        save_checkpoint(path, {}, {"a/b": np.zeros(1), "a": {"b": np.ones(1)}})
    assert not path.exists() and os.listdir(tmp_path) == []
