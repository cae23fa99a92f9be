"""The ablation's orchestration (``minidense.experiments.ablation``): which variants it trains,
resuming, refusing foreign results, the summary statistics and directions, and its outputs.
Training is replaced by a stand-in that returns known numbers; tests/test_ablation_parallel.py
trains the tiny preset for real."""

import csv
import json
import os

import numpy as np
import pytest

from minidense.experiments import ablation as A

# A stand-in's mask AP / AP50 / AP75 (%) per variant; box AP is mask AP + 5. Seeds add ±1.
FAKE = {
    "roipool-s16-sigmoid": (30, 60, 28),
    "roiwarp-s16-sigmoid": (31, 60, 29),
    "roialign-s16-sigmoid": (40, 65, 42),
    "roipool-s32-sigmoid": (20, 45, 15),
    "roiwarp-s32-sigmoid": (20, 46, 15),
    "roialign-s32-sigmoid": (35, 55, 36),
    "roialign-s16-softmax": (36, 63, 37),
}


@pytest.fixture
def fake_training(monkeypatch):
    """Replace training with a recorder that returns FAKE's numbers (seed s shifts them by s−1)."""
    calls = []

    def train(pooler, stride, mask_loss, seed, preset_name, progress, plots, bar):
        calls.append((f"{pooler}-s{stride}-{mask_loss}", seed, preset_name))
        base = np.array(FAKE[f"{pooler}-s{stride}-{mask_loss}"], float) + (seed - 1)
        segm = dict(zip(A.METRICS, base / 100, strict=True))
        bbox = dict(zip(A.METRICS, (base + 5) / 100, strict=True))
        bar.update(1)
        return {"segm": segm, "bbox": bbox, "history": [], "seconds": 0.0}

    monkeypatch.setattr(A, "train_maskrcnn", train)
    monkeypatch.setenv("MINIDENSE_FAST", "0")  # the presets as named, not all shrunk to "fast"
    return calls


def test_variants_cover_the_grid_and_the_mask_loss_pair():
    names = [v.name for v in A.variants((16, 32))]
    assert names == list(FAKE)
    # Stride 32 alone still trains the sigmoid twin that softmax is compared with.
    assert [v.name for v in A.variants((32,))] == [
        "roipool-s32-sigmoid", "roiwarp-s32-sigmoid", "roialign-s32-sigmoid",
        "roialign-s16-softmax", "roialign-s16-sigmoid",
    ]  # fmt: skip


def test_run_trains_every_variant_and_seed_once_and_writes_outputs(tmp_path, fake_training):
    out = tmp_path / "abl"
    report = A.run_ablation("quick", seeds=3, out=str(out), progress=False, plots=True)
    assert sorted(fake_training) == sorted((n, s, "ablation-quick") for n in FAKE for s in range(3))
    # Seed-major: after the first seed's variants the table is already whole.
    assert [s for _, s, _ in fake_training] == [0] * 7 + [1] * 7 + [2] * 7
    for name, (ap, ap50, ap75) in FAKE.items():
        row = report.rows[name]
        assert row["n"] == 3
        # Seeds shift by −1, 0, +1: the mean is the base value and the (population) std √(2/3).
        np.testing.assert_allclose(row["segm"]["AP"], (ap, np.sqrt(2 / 3)), rtol=1e-9)
        np.testing.assert_allclose(row["segm"]["AP50"][0], ap50, rtol=1e-9)
        np.testing.assert_allclose(row["bbox"]["AP75"][0], ap75 + 5, rtol=1e-9)
    for f in ("results.json", "results.csv", "report.txt", "ablation.png"):
        assert (out / f).stat().st_size > 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["variant"] for r in rows] == list(FAKE)
    assert float(rows[2]["segm_AP_mean"]) == pytest.approx(40.0)
    saved = json.load(open(out / "results.json"))
    assert len(saved["runs"]) == 21 and saved["rows"]["roialign-s32-sigmoid"]["n"] == 3
    text = (out / "report.txt").read_text()
    assert "Δ RoIAlign − RoIPool s32" in text and "+15.0" in text and "+21.0" in text


def test_directions_are_judged_on_the_means(fake_training, tmp_path):
    report = A.run_ablation("quick", seeds=1, out=str(tmp_path), progress=False, plots=False)
    verdicts = {text: held for text, held, _ in report.directions}
    assert verdicts == {
        "RoIAlign > RoIPool in mask AP at stride 16": True,  # +10
        "RoIAlign > RoIPool in mask AP at stride 32": True,  # +15
        "the gain is larger at AP75 than at AP50 (stride 16)": True,  # +14 vs +5
        "the gain is larger at AP75 than at AP50 (stride 32)": True,  # +21 vs +10
        "the gain is larger at stride 32 than at stride 16": True,
        "per-class sigmoid masks > softmax masks (stride 16)": True,  # +4
    }
    # Flip one: softmax ahead of sigmoid must read as NO in the report.
    rows = json.loads(json.dumps(report.rows))
    rows["roialign-s16-softmax"]["segm"]["AP"] = [50.0, 0.0]
    verdicts = {text: held for text, held, _ in A._directions(rows)}
    assert verdicts["per-class sigmoid masks > softmax masks (stride 16)"] is False
    assert "[ NO] per-class sigmoid" in A._format(rows, A._directions(rows))


def test_per_seed_gains_pair_runs_that_share_a_seed():
    """A mean can hide that one seed carries a direction: the details say how many seeds agree."""

    def record(variant, seed, ap):
        pooler, stride, loss = variant.split("-")
        m = {"AP": ap / 100, "AP50": (ap + 20) / 100, "AP75": ap / 100}
        return {"variant": variant, "pooler": pooler, "stride": int(stride[1:]), "mask_loss": loss,
                "seed": seed, "segm": m, "bbox": m}  # fmt: skip

    aps = {"roialign-s16-sigmoid": (40, 40, 40), "roipool-s16-sigmoid": (30, 30, 30),
           "roialign-s32-sigmoid": (30, 30, 45), "roipool-s32-sigmoid": (25, 25, 20)}  # fmt: skip
    records = [record(v, k, ap) for v, per in aps.items() for k, ap in enumerate(per)]
    records.append(record("roipool-s32-sigmoid", 3, 0))  # no RoIAlign twin: not paired
    report = A.summarise(records)
    assert report.gains[16] == pytest.approx({0: 10, 1: 10, 2: 10})
    assert report.gains[32] == pytest.approx({0: 5, 1: 5, 2: 25})
    details = {text: (held, detail) for text, held, detail in report.directions}
    assert details["RoIAlign > RoIPool in mask AP at stride 32"][1].endswith(
        "per seed +5.0, +5.0, +25.0"
    )
    held, detail = details["the gain is larger at stride 32 than at stride 16"]
    # means: +17.5 (RoIPool s32 averages in the unpaired seed) vs +10.0; per seed: 1 of 3
    assert held and "larger at s32 in 1 of 3 seeds;" in detail
    assert "larger at s32 in 1 of 3 seeds" in report.text
    # The relative cost, from the means: RoIPool 30.0 / RoIAlign 40.0 at s16, 17.5 / 35.0 at s32.
    assert "; RoIPool keeps 75% of RoIAlign's mask AP at s16, 50% at s32" in detail


def test_one_stride_reports_only_what_it_measured(fake_training, tmp_path):
    report = A.run_ablation("quick", seeds=1, strides=(16,), out=str(tmp_path), progress=False,
                            plots=False)  # fmt: skip
    assert set(report.rows) == {n for n in FAKE if "s16" in n}
    texts = [t for t, _, _ in report.directions]
    assert not any("stride 32" in t for t in texts)
    assert "per-class sigmoid masks > softmax masks (stride 16)" in texts


def test_a_second_run_resumes_and_retrains_only_what_is_missing(fake_training, tmp_path):
    first = A.run_ablation("quick", seeds=2, out=str(tmp_path), progress=False, plots=False)
    runs = tmp_path / "runs"
    (runs / "roiwarp-s32-sigmoid-seed1.json").unlink()  # never finished
    (runs / "roipool-s16-sigmoid-seed0.json").write_text('{"variant": "roip')  # torn by a kill
    fake_training.clear()
    second = A.run_ablation("quick", seeds=2, out=str(tmp_path), progress=False, plots=False)
    assert sorted(fake_training) == [("roipool-s16-sigmoid", 0, "ablation-quick"),
                                     ("roiwarp-s32-sigmoid", 1, "ablation-quick")]  # fmt: skip
    assert second.rows == first.rows and second.text == first.text
    assert not [f for f in os.listdir(runs) if f.endswith(".tmp")]


def test_results_of_other_settings_are_refused_not_mixed_in(fake_training, tmp_path):
    A.run_ablation("quick", seeds=1, strides=(16,), out=str(tmp_path), progress=False,
                   plots=False)  # fmt: skip
    with pytest.raises(ValueError, match="trained with other settings.*another --out"):
        A.run_ablation("full", seeds=1, strides=(16,), out=str(tmp_path), progress=False,
                       plots=False)  # fmt: skip
    # Records from before settings were saved are foreign too.
    path = tmp_path / "runs" / "roipool-s16-sigmoid-seed0.json"
    record = json.loads(path.read_text())
    del record["settings"]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="roipool-s16-sigmoid-seed0.json"):
        A.run_ablation("quick", seeds=1, strides=(16,), out=str(tmp_path), progress=False,
                       plots=False)  # fmt: skip


def test_a_one_stride_model_option_keeps_the_other_strides_records(
    fake_training, tmp_path, monkeypatch
):
    """c4_head changes only the stride-16 variants (c5_blocks only stride 32): a preset that
    adds it refuses the old stride-16 records, and once they are moved away retrains only
    those, keeping the stride-32 records, which it would train alike."""
    A.run_ablation("quick", seeds=1, out=str(tmp_path), progress=False, plots=False)
    base = A.training_preset

    def preset(name=None):
        p = dict(base(name))
        p["model"] = dict(p.get("model", {}), c4_head=True)
        return p

    monkeypatch.setattr(A, "training_preset", preset)
    fake_training.clear()
    with pytest.raises(ValueError, match="roipool-s16-sigmoid-seed0.json was trained with other"):
        A.run_ablation("quick", seeds=1, out=str(tmp_path), progress=False, plots=False)
    assert fake_training == []
    for f in (tmp_path / "runs").glob("*-s16-*"):
        f.unlink()
    report = A.run_ablation("quick", seeds=1, out=str(tmp_path), progress=False, plots=False)
    assert sorted(n for n, _, _ in fake_training) == sorted(
        v.name for v in A.variants() if v.stride == 16
    )
    assert len(report.rows) == 7
    p = dict(base("ablation"), model={"c5_blocks": 2})
    assert "c5_blocks" not in A.settings_of(p, A.Variant("roialign", 16))["model"]
    assert A.settings_of(p, A.Variant("roialign", 32))["model"] == {"c5_blocks": 2}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="huge"), "preset must be one of"),
        (dict(seeds=0), "seeds must be a positive integer"),
        (dict(strides=(8,)), r"strides must be a non-empty subset of \(16, 32\)"),
        (dict(strides=()), "strides must be a non-empty subset"),
        # a repeated stride once ran each variant twice and reported it as two seeds
        (
            dict(strides=(16, 16)),
            r"strides must be a non-empty subset of \(16, 32\), got \(16, 16\)",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, match, tmp_path, fake_training):
    with pytest.raises(ValueError, match=match):
        A.run_ablation(**{"out": str(tmp_path), "progress": False, **kwargs})
    assert fake_training == []


def test_full_preset_trains_larger_objects_with_matching_anchors():
    from minidense.experiments.maskrcnn import preset

    p = preset("ablation")
    assert p["data"] == {"size_range": (0.2, 0.4), "max_shapes": 3}
    assert A.PRESETS["full"] == ("ablation", 3) and p["image_size"] == 128
    q = preset("ablation-quick")
    assert A.PRESETS["quick"] == ("ablation-quick", 1) and q["image_size"] == 96
    assert q["data"] == p["data"]
    # The learning rate is part of the settings a record stores, so runs at another are refused.
    assert p["lr"] == 1e-3 and q["lr"] == 3e-3 and A.as_saved(p)["lr"] == 1e-3
    for t in (p, q):  # anchors of a quarter, half and the whole image: objects span 0.4-0.8 of it
        size = t["image_size"]
        assert t["model"] == {"anchor_sizes": (size // 4, size // 2, size)}


def test_full_c4_preset_is_the_full_one_with_the_c4_head():
    from minidense.experiments.maskrcnn import preset

    assert A.PRESETS["full-c4"] == ("ablation-c4", 3)
    full, c4 = preset("ablation"), preset("ablation-c4")
    assert c4["model"] == dict(full["model"], c4_head=True)
    assert {k: v for k, v in c4.items() if k != "model"} == {
        k: v for k, v in full.items() if k != "model"
    }
    # So the full ablation's stride-32 records are full-c4's too (c4_head leaves stride 32 alone).
    for v in A.variants():
        same = A.settings_of(c4, v) == A.settings_of(full, v)
        assert same == (v.stride == 32)
