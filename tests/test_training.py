"""Training commands: losses fall, runs resume exactly, failures stop cleanly and keep results."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minidense.checkpoint import load_checkpoint
from minidense.experiments import segmentation as seg
from minidense.experiments.training import NonFiniteLossError

TINY = dict(image_size=16, n_train=8, n_test=4, batch_size=4, base=4, depth=1, progress=False)


def _params(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_short_unet_run_lowers_the_loss():
    r = seg.train_segmentation("unet", epochs=4, lr=1e-2, **TINY)
    losses = [h["loss"] for h in r["history"]]
    assert losses[-1] < losses[0]
    assert 0.0 <= r["mIoU"] <= 1.0


def test_progress_false_trains_silently_and_true_reports_each_epoch(capsys):
    seg.train_segmentation("unet", epochs=1, plots=False, **TINY)
    assert "epoch" not in capsys.readouterr().out
    seg.train_segmentation("unet", epochs=1, plots=False, **dict(TINY, progress=True))
    assert "epoch 1/1" in capsys.readouterr().out


def test_checkpoint_after_each_epoch_and_pictures(tmp_path):
    out = tmp_path / "run"
    seg.train_segmentation("unet", epochs=2, out=str(out), **TINY)
    ckpt = load_checkpoint(str(out / "checkpoint.npz"))
    assert ckpt["epoch"] == 2
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert (out / "curves.png").stat().st_size > 0
    assert (out / "predictions.png").stat().st_size > 0


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Kill a run mid-epoch 2: the epoch-1 checkpoint stays intact, and --resume then reaches
    bit-for-bit the weights of an uninterrupted run with the same seed."""
    full = seg.train_segmentation("unet", epochs=3, plots=False, **TINY)
    expected = _params(full["model"])

    out = str(tmp_path / "run")
    real_step = seg.optim.AdamW.step
    calls = {"n": 0}

    def crashing_step(self):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 1 has 2 steps: die in the middle of epoch 2
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(seg.optim.AdamW, "step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        seg.train_segmentation("unet", epochs=3, out=out, plots=False, **TINY)
    monkeypatch.setattr(seg.optim.AdamW, "step", real_step)

    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["epoch"] == 1
    resumed = seg.train_segmentation("unet", epochs=3, out=out, resume=True, plots=False, **TINY)
    got = _params(resumed["model"])
    assert got.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]


def test_resume_refuses_another_configuration(tmp_path):
    out = str(tmp_path / "run")
    seg.train_segmentation("unet", epochs=1, out=out, plots=False, **TINY)
    with pytest.raises(ValueError, match="another configuration"):
        seg.train_segmentation("unet", epochs=2, out=out, resume=True, plots=False,
                               **dict(TINY, base=8))  # fmt: skip


def test_resume_without_checkpoint_says_so(tmp_path):
    with pytest.raises(ValueError, match="checkpoint.npz"):
        seg.train_segmentation("unet", epochs=1, out=str(tmp_path), resume=True, **TINY)


def test_same_seed_same_bits():
    a = seg.train_segmentation("unet", epochs=1, plots=False, **TINY)
    b = seg.train_segmentation("unet", epochs=1, plots=False, **TINY)
    for k, v in _params(a["model"]).items():
        np.testing.assert_array_equal(v, _params(b["model"])[k], err_msg=k)


def test_nan_loss_stops_with_step_and_term(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    seg.train_segmentation("unet", epochs=1, out=out, plots=False, **TINY)
    before = open(os.path.join(out, "checkpoint.npz"), "rb").read()
    real_ce = seg.cross_entropy
    monkeypatch.setattr(seg, "cross_entropy", lambda logits, y: real_ce(logits, y) * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"'loss' is nan at epoch 2, step 1"):
        seg.train_segmentation("unet", epochs=2, out=out, resume=True, plots=False, **TINY)
    # The last good checkpoint is untouched.
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() == before


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="cannot create the output directory"):
        seg.train_segmentation("unet", epochs=1, out=str(blocker / "run"), **TINY)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "minidense", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_cli_help_lists_the_commands():
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("demo", "train-unet", "train-maskrcnn", "ablate"):
        assert cmd in r.stdout


def test_cli_unknown_flag_is_a_usage_error():
    r = _cli("train-unet", "--epoch", "3")
    assert r.returncode == 2
    assert "unrecognized arguments: --epoch" in r.stderr


def test_cli_reports_bad_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("train-unet", "--epochs", "0", "--out", str(blocker / "run"))
    assert r.returncode == 2
    assert "error: --out" in r.stderr and "Traceback" not in r.stderr


def test_interrupted_maskrcnn_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    """The same guarantee for train-maskrcnn, whose samplers draw from per-epoch random streams."""
    from minidense.experiments import maskrcnn as mr

    kw = dict(preset_name="fast", n_train=4, n_test=2, image_size=64, batch_size=2, progress=False,
              plots=False)  # fmt: skip
    full = mr.train_maskrcnn(epochs=2, **kw)
    expected = _params(full["model"])

    out = str(tmp_path / "run")
    real_step = mr.optim.AdamW.step
    calls = {"n": 0}

    def crashing_step(self):
        calls["n"] += 1
        if calls["n"] == 3:  # 2 steps an epoch: die in the middle of epoch 2
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(mr.optim.AdamW, "step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        mr.train_maskrcnn(epochs=2, out=out, **kw)
    monkeypatch.setattr(mr.optim.AdamW, "step", real_step)

    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["epoch"] == 1
    resumed = mr.train_maskrcnn(epochs=2, out=out, resume=True, **kw)
    got = _params(resumed["model"])
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)


def test_maskrcnn_preset_data_and_model_options_reach_the_run(tmp_path, monkeypatch):
    """A preset's ``data`` goes to ShapesInstances and its ``model`` to MaskRCNNConfig (the full
    ablation's larger objects and anchors); the checkpoint's config records both."""
    from minidense.experiments import maskrcnn as mr

    fast = mr.preset("fast")
    options = dict(fast, data=dict(max_shapes=1), model=dict(anchor_sizes=(8, 16)))
    monkeypatch.setattr(mr, "preset", lambda name=None: options)
    seen = []
    real = mr.ShapesInstances

    def recording(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(mr, "ShapesInstances", recording)
    out = str(tmp_path / "run")
    result = mr.train_maskrcnn(epochs=1, out=out, progress=False, plots=False)
    assert seen and all(kw["max_shapes"] == 1 for kw in seen)
    assert result["model"].cfg.anchor_sizes == (8, 16)
    config = load_checkpoint(os.path.join(out, "checkpoint.npz"))["extra"]["config"]
    assert config["data"] == {"max_shapes": 1} and config["anchor_sizes"] == [8, 16]


@pytest.mark.parametrize("given, used", [(None, 2e-4), (5e-4, 5e-4)])
def test_maskrcnn_learning_rate_from_the_preset_unless_given(given, used, monkeypatch):
    """A preset's ``lr`` (the full ablation's 1e-3) is the default; an explicit ``lr`` wins."""
    from minidense.experiments import maskrcnn as mr

    fast = mr.preset("fast")
    monkeypatch.setattr(mr, "preset", lambda name=None: dict(fast, lr=2e-4))
    seen = []
    real = mr.optim.AdamW

    def recording(params, lr, **kwargs):
        seen.append(lr)
        return real(params, lr=lr, **kwargs)

    monkeypatch.setattr(mr.optim, "AdamW", recording)
    mr.train_maskrcnn(epochs=0, n_test=1, lr=given, progress=False, plots=False)
    assert seen == [used]
    for bad in (0, -1e-3, float("nan"), True, "1e-3"):
        with pytest.raises(ValueError, match="lr must be a positive number"):
            mr.train_maskrcnn(epochs=0, lr=bad, progress=False, plots=False)


# ------------------------------------------------------------- runs never replace saved work


def _main(capsys, *argv):
    """Run the command line in this process; returns (exit code, stdout, stderr)."""
    from minidense.__main__ import main

    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _earlier_checkpoint(out):
    """A checkpoint as an earlier run left it (only its existence matters to these checks)."""
    from minidense.checkpoint import save_checkpoint

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "checkpoint.npz")
    save_checkpoint(path, {"w": np.arange(3.0)}, epoch=7)
    return path


def test_fresh_run_refuses_to_replace_an_earlier_checkpoint(tmp_path):
    """`train-unet --model segnet` after a U-Net run shares the default --out: it must not wipe
    the U-Net's checkpoint, and says so before training."""
    out = str(tmp_path / "run")
    seg.train_segmentation("unet", epochs=1, out=out, plots=False, **TINY)
    before = open(os.path.join(out, "checkpoint.npz"), "rb").read()
    with pytest.raises(ValueError, match=r"holds a checkpoint from an earlier run: pass --resume"):
        seg.train_segmentation("segnet", epochs=1, out=out, plots=False, **TINY)
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() == before


def test_fresh_maskrcnn_run_refuses_to_replace_an_earlier_checkpoint(tmp_path, monkeypatch):
    from minidense.experiments import maskrcnn as mr

    path = _earlier_checkpoint(str(tmp_path / "run"))
    before = open(path, "rb").read()
    monkeypatch.setattr(mr, "MaskRCNN", None)  # refused before a model is even built
    with pytest.raises(ValueError, match="holds a checkpoint from an earlier run"):
        mr.train_maskrcnn(epochs=1, out=str(tmp_path / "run"), progress=False, plots=False)
    assert open(path, "rb").read() == before


@pytest.mark.parametrize("command", ["train-unet", "train-maskrcnn"])
def test_cli_training_refuses_to_replace_an_earlier_checkpoint(command, tmp_path, capsys):
    out = str(tmp_path / "run")
    path = _earlier_checkpoint(out)
    before = open(path, "rb").read()
    code, _, err = _main(capsys, command, "--out", out)
    assert code == 2 and "Traceback" not in err
    assert f"error: {out} holds a checkpoint from an earlier run: pass --resume" in err
    assert open(path, "rb").read() == before


def test_demo_refuses_to_replace_a_checkpoint_and_without_out_runs_twice(tmp_path, capsys):
    out = str(tmp_path / "run")
    path = _earlier_checkpoint(out)
    code, _, err = _main(capsys, "demo", "--out", out)
    assert code == 2 and "choose another --out" in err and "pass --resume" not in err
    assert load_checkpoint(path)["epoch"] == 7
    for _ in range(2):  # the README's first command writes nothing, so it can always rerun
        code, stdout, _ = _main(capsys, "demo", "--epochs", "0")
        assert code == 0 and "mIoU" in stdout


def test_resume_without_checkpoint_leaves_no_folder(tmp_path, capsys):
    from minidense.experiments import maskrcnn as mr

    with pytest.raises(ValueError, match="checkpoint.npz"):
        seg.train_segmentation("unet", epochs=1, out=str(tmp_path / "a"), resume=True, **TINY)
    with pytest.raises(ValueError, match="checkpoint.npz"):
        mr.train_maskrcnn(epochs=1, out=str(tmp_path / "b"), resume=True, progress=False)
    code, _, err = _main(capsys, "train-unet", "--out", str(tmp_path / "c"), "--resume")
    assert code == 2 and "error: --resume needs" in err
    assert os.listdir(tmp_path) == []


def test_resume_refuses_another_learning_rate_and_accepts_an_older_checkpoint(tmp_path):
    """The lr is part of the run: resuming at another one would mix two schedules. A checkpoint
    saved before the lr was recorded (no "lr" key) still resumes."""
    from minidense.checkpoint import save_checkpoint

    out = str(tmp_path / "run")
    seg.train_segmentation("unet", epochs=1, out=out, lr=1e-2, plots=False, **TINY)
    with pytest.raises(ValueError, match=r"another configuration \(lr: saved 0.01 vs now 1e-05\)"):
        seg.train_segmentation("unet", epochs=2, out=out, lr=1e-5, resume=True, plots=False,
                               **TINY)  # fmt: skip
    path = os.path.join(out, "checkpoint.npz")
    old = load_checkpoint(path)
    del old["extra"]["config"]["lr"]
    save_checkpoint(path, old["model"], old["optimizer"], old["epoch"], old["extra"])
    r = seg.train_segmentation("unet", epochs=2, out=out, resume=True, plots=False, **TINY)
    assert len(r["history"]) == 2


def test_maskrcnn_resume_refuses_another_learning_rate(tmp_path):
    from minidense.experiments import maskrcnn as mr

    kw = dict(preset_name="fast", n_train=2, n_test=1, image_size=64, batch_size=2, progress=False,
              plots=False)  # fmt: skip
    out = str(tmp_path / "run")
    mr.train_maskrcnn(epochs=1, out=out, lr=3e-3, **kw)
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["extra"]["config"]["lr"] == 3e-3
    with pytest.raises(ValueError, match=r"another configuration \(lr: saved 0.003 vs now 1e-06\)"):
        mr.train_maskrcnn(epochs=2, out=out, lr=1e-6, resume=True, **kw)


def test_resume_from_a_checkpoint_of_another_model_is_a_clear_error(tmp_path, capsys):
    """A checkpoint saved by save_checkpoint directly (no run config) whose arrays do not fit
    the model: a CheckpointError naming the file, and on the command line `error:`, exit 2."""
    from minidense.checkpoint import CheckpointError

    out = str(tmp_path / "run")
    path = _earlier_checkpoint(out)
    with pytest.raises(CheckpointError, match=r"checkpoint.npz' is from another model"):
        seg.train_segmentation("unet", epochs=1, out=out, resume=True, plots=False, **TINY)
    code, _, err = _main(capsys, "train-unet", "--out", out, "--resume")
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: --resume: {path!r} is from another model")


@pytest.mark.parametrize(
    "argv, target, hint",
    [
        (["demo"], "minidense.experiments.segmentation.train_segmentation", None),
        (["ablate"], "minidense.experiments.ablation.run_ablation",
         "rerun the same command: finished variants are kept"),
        (["train-unet", "--out", "{fresh}"], "minidense.experiments.segmentation.train_segmentation",
         "no checkpoint yet; rerun the same command"),
        (["train-unet", "--out", "{saved}", "--resume"],
         "minidense.experiments.segmentation.train_segmentation", "rerun with --resume"),
        (["train-maskrcnn", "--out", "{saved}", "--resume"],
         "minidense.experiments.maskrcnn.train_maskrcnn", "rerun with --resume"),
    ],
    ids=["demo", "ablate", "train-unet-no-epoch-done", "train-unet", "train-maskrcnn"],
)  # fmt: skip
def test_ctrl_c_hint_fits_the_command(argv, target, hint, tmp_path, capsys, monkeypatch):
    """Only the train-* commands have --resume; demo and ablate must not suggest it."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, interrupted)
    _earlier_checkpoint(str(tmp_path / "saved"))
    argv = [a.format(fresh=tmp_path / "fresh", saved=tmp_path / "saved") for a in argv]
    code, _, err = _main(capsys, *argv)
    assert code == 130 and "interrupted" in err
    if hint is None:
        assert "resume" not in err and "rerun" not in err
    else:
        assert hint in err
    if not argv[0].startswith("train-"):
        assert "--resume" not in err


def test_zero_epoch_run_names_only_the_files_it_wrote(tmp_path, capsys):
    out = str(tmp_path / "run")
    code, stdout, _ = _main(capsys, "train-unet", "--epochs", "0", "--out", out)
    assert code == 0
    assert sorted(os.listdir(out)) == ["predictions.png"]
    assert f"predictions.png is in {out}/" in stdout and "checkpoint" not in stdout


def test_fcn_image_size_must_be_a_multiple_of_32(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"image_size must be a multiple of 32 .*'fcn'.*got 48: use "
                                         r"32 or 64"):  # fmt: skip
        seg.train_segmentation("fcn", epochs=0, plots=False, **dict(TINY, image_size=48))
    code, _, err = _main(capsys, "train-unet", "--model", "fcn", "--image-size", "20", "--out",
                         str(tmp_path / "run"))  # fmt: skip
    assert code == 2 and "got 20: use 32" in err and not os.path.exists(tmp_path / "run")
    r = seg.train_segmentation("fcn", epochs=0, plots=False, **dict(TINY, image_size=None))
    assert 0.0 <= r["pixel_acc"] <= 1.0  # the default size fits FCN


def test_cli_help_gives_defaults_and_the_tiny_preset(capsys):
    code, stdout, _ = _main(capsys, "train-unet", "--help")
    assert code == 0
    text = " ".join(stdout.split())  # argparse wraps lines
    for default in ("(default: 24", "(default: 48", "(default: 0.01)"):
        assert default in text
    code, stdout, _ = _main(capsys, "ablate", "--help")
    assert code == 0 and "tiny: a smoke test" in " ".join(stdout.split())


def test_readme_quotes_the_measured_maskrcnn_figures():
    """README's command table gives train-maskrcnn's mask AP as measured in docs/benchmarks.md."""
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = open(os.path.join(root, "README.md")).read()
    bench = open(os.path.join(root, "docs", "benchmarks.md")).read()
    row = next(line for line in readme.splitlines() if line.startswith("| `train-maskrcnn"))
    ap, ap50 = re.search(r"mask AP ([\d.]+), AP50 ([\d.]+)", row).groups()
    assert f"**mask {ap} / AP50 {ap50} /" in bench
    # ... and its ablate row names every ablation preset.
    from minidense.experiments.ablation import PRESETS

    assert "`ablate [--preset " + "\\|".join(PRESETS) + "]" in readme
