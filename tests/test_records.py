"""The measured results shipped with minidense (experiments/records/): what the notebooks show
beside their short live runs. Each record says how it was made, and its numbers are the runs'."""

import pytest

from minidense.experiments import records
from minidense.experiments.segmentation import measured_decoders, summarise_decoders


def test_every_record_says_how_it_was_measured():
    assert "unet_decoders" in records.available()
    for name in records.available():
        record = records.load_record(name)
        about = record["about"]
        for key in ("command", "date", "commit", "machine", "duration", "settings"):
            assert about.get(key), f"{name}: 'about' lacks {key!r}"
        line = records.describe(about)
        assert line.startswith("measured ") and about["command"] in line
        assert record["runs"], f"{name} holds no runs"


def test_an_unknown_record_is_refused_by_name():
    with pytest.raises(ValueError, match="name must be one of"):
        records.load_record("no_such_record")


def test_decoder_record_has_every_decoder_and_seed():
    runs = measured_decoders()["runs"]
    assert sorted((r["decoder"], r["seed"]) for r in runs) == sorted(
        (d, s) for d in ("bilinear", "transposed", "nearest") for s in (0, 1, 2)
    )
    assert all(0 < r["mIoU"] <= 1 and len(r["iou_per_class"]) == 4 for r in runs)


def test_summarise_decoders_separates_only_when_every_seed_is_apart():
    runs = [dict(decoder="a", seed=s, mIoU=v, parameters=10) for s, v in enumerate((0.9, 0.8))]
    runs += [dict(decoder="b", seed=s, mIoU=v, parameters=12) for s, v in enumerate((0.7, 0.6))]
    runs += [dict(decoder="c", seed=s, mIoU=v) for s, v in enumerate((0.85, 0.65))]
    rows, pairs = summarise_decoders(runs)
    assert rows["a"]["mean"] == pytest.approx(0.85) and rows["a"]["std"] == pytest.approx(0.05)
    assert rows["a"]["seeds"] == {0: 0.9, 1: 0.8} and rows["b"]["parameters"] == 12
    assert rows["c"]["parameters"] is None  # not recorded
    verdict = {(a, b): (round(d, 6), sep) for a, b, d, sep in pairs}
    assert verdict == {("a", "b"): (0.2, True), ("a", "c"): (0.1, False), ("b", "c"): (-0.1, False)}


def test_ablation_record_is_a_whole_full_ablation():
    from minidense.experiments.ablation import PRESETS, measured_report, variants

    record = records.load_record("ablation_full")
    seeds = PRESETS["full"][1]
    assert sorted((r["variant"], r["seed"]) for r in record["runs"]) == sorted(
        (v.name, s) for v in variants() for s in range(seeds)
    )
    assert {r["preset"] for r in record["runs"]} == {"ablation"}
    report, about = measured_report()
    assert about == record["about"] and "ablate --preset full" in about["command"]
    assert all(row["n"] == seeds for row in report.rows.values())
    align16 = [r["segm"]["AP"] for r in record["runs"] if r["variant"] == "roialign-s16-sigmoid"]
    assert report.rows["roialign-s16-sigmoid"]["segm"]["AP"][0] == pytest.approx(
        100 * sum(align16) / len(align16)
    )
