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
