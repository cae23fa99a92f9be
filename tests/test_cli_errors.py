"""The command line turns every documented error and every OSError into one line on stderr and
exit status 2 (never a traceback): one representative of each kind."""

import contextlib
import errno
import io
import subprocess
import sys
from unittest import mock

import pytest

from minidense.__main__ import main
from minidense.checkpoint import CheckpointError
from minidense.experiments import segmentation
from minidense.experiments.training import NonFiniteLossError


def run(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, err.getvalue().strip().splitlines()


RAISED = {
    "permission": (PermissionError(errno.EACCES, "Permission denied", "run/checkpoint.npz"),
                   "error: Permission denied: 'run/checkpoint.npz'; choose a folder you can "
                   "write to (--out)"),
    "disk-full": (OSError(errno.ENOSPC, "No space left on device", "run/curves.png"),
                  "error: No space left on device: 'run/curves.png'; free some disk space, or "
                  "choose another --out"),
    "read-only": (OSError(errno.EROFS, "Read-only file system", "run"),
                  "error: Read-only file system: 'run'; choose a folder you can write to (--out)"),
    "not-a-directory": (NotADirectoryError(errno.ENOTDIR, "Not a directory", "f/run"),
                        "error: Not a directory: 'f/run'"),
    "key": (KeyError("state_dict does not match UNet: missing keys ['a']"),
            "error: state_dict does not match UNet: missing keys ['a']"),
    "index": (IndexError("index 7 is out of range"), "error: index 7 is out of range"),
    "runtime": (RuntimeError("no CUDA GPU found:\n  install a driver"),
                "error: no CUDA GPU found: install a driver"),
    "checkpoint": (CheckpointError("cannot load checkpoint 'x': truncated"),
                   "error: cannot load checkpoint 'x': truncated"),
    "non-finite": (NonFiniteLossError("loss term 'loss' is nan at epoch 1, step 1"),
                   "error: loss term 'loss' is nan at epoch 1, step 1"),
}  # fmt: skip


@pytest.mark.parametrize("kind", RAISED)
def test_each_kind_of_error_is_one_line_and_exit_status_2(kind, tmp_path):
    exc, line = RAISED[kind]
    with mock.patch.object(segmentation, "train_segmentation", side_effect=exc):
        code, lines = run("train-unet", "--out", str(tmp_path / "run"))
    assert code == 2
    assert lines == [line]


def test_a_checkpoint_path_that_is_a_directory(tmp_path):
    """Not mocked: --resume where checkpoint.npz is a folder, through ``python -m``."""
    (tmp_path / "run" / "checkpoint.npz").mkdir(parents=True)
    r = subprocess.run(
        [sys.executable, "-m", "minidense", "train-unet", "--out", str(tmp_path / "run"),
         "--resume"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: checkpoint path '{tmp_path}/run/checkpoint.npz' is a directory, not a file"
    ]


def test_an_unexpected_error_is_not_hidden(tmp_path):
    """Only documented kinds are mapped: a bug (here an AttributeError) keeps its traceback."""
    with (
        mock.patch.object(segmentation, "train_segmentation", side_effect=AttributeError("bug")),
        pytest.raises(AttributeError, match="bug"),
    ):
        run("train-unet", "--out", str(tmp_path / "run"))


def _flags():
    """Every (command, flag, malformed value) of the parser: a word where a number or a choice
    belongs, and numbers out of each flag's range."""
    from minidense import __main__ as cli

    out_of_range = {cli._non_negative: ["-1", "1.5"], cli._positive: ["0", "-1", "1.5"],
                    cli._positive_float: ["0", "-1", "nan", "inf"], int: ["8", "1.5"]}  # fmt: skip
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.dest == "help":
                continue
            if action.type is None and action.choices is None:
                continue  # a free string (a path): its errors are the OSError cases above
            flag = action.option_strings[0]
            for value in ["x"] + out_of_range.get(action.type, []):
                yield pytest.param(command, flag, value, id=f"{command}{flag}={value}")


@pytest.mark.parametrize("command, flag, value", list(_flags()))
def test_every_flag_refuses_a_malformed_value_by_name(command, flag, value, tmp_path):
    code, lines = run(command, flag, value, "--out", str(tmp_path / "run"))
    assert code == 2, f"{command} {flag} {value}: exit {code}, stderr {lines}"
    assert f"argument {flag}" in lines[-1], lines
    assert not (tmp_path / "run").exists()  # refused before anything was made
