"""The benchmark scripts' command lines: thread counts that take effect, arguments checked.

Nothing is timed here: the scripts are started only far enough to parse their arguments.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(args, env=None, code=None):
    full_env = {**os.environ, "NUMBA_NUM_THREADS": "1", **(env or {})}
    full_env.pop("OPENBLAS_NUM_THREADS", None)
    full_env["PYTHONPATH"] = str(BENCH.parent)
    cmd = [sys.executable, *(["-c", code] if code else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)


@pytest.mark.parametrize(
    "script, flag",
    [
        ("bench_dense", "--repeats"),
        ("bench_roi", "--repeats"),
        ("bench_unet", "--repeat"),
        ("bench_maskrcnn", "--steps"),
        ("bench_maskrcnn", "--blocks"),
    ],  # fmt: skip
)
def test_zero_repeats_are_refused(script, flag):
    result = _run([str(BENCH / f"{script}.py"), flag, "0"])
    assert result.returncode == 2, result.stderr
    assert "must be a positive integer" in result.stderr


@pytest.mark.parametrize("script", ["bench_dense", "bench_roi", "bench_unet", "bench_maskrcnn"])
def test_threads_flag_wins_over_the_environment(script):
    # Import the script as a module with --threads 3 on its command line, as when it is run.
    code = (
        "import os, sys; sys.argv = ['bench', '--threads', '3']; "
        f"sys.path.insert(0, {str(BENCH)!r}); import {script} as b; "
        "print(b.THREADS, os.environ['NUMBA_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'])"
    )
    result = _run([], env={"NUMBA_NUM_THREADS": "1"}, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3", "3"]
    # Without --threads the environment's count is used, BLAS's included.
    code = code.replace("'--threads', '3'", "")
    result = _run([], env={"NUMBA_NUM_THREADS": "1"}, code=code)
    assert result.stdout.split() == ["1", "1", "1"], result.stderr


def test_unet_help_is_a_whole_sentence_and_ratio_explained():
    result = _run([str(BENCH / "bench_unet.py"), "--help"])
    assert result.returncode == 0
    assert "same thread count." in " ".join(result.stdout.split())
    assert "ratio = warm time /" in (BENCH / "bench_unet.py").read_text()


def test_the_shared_module_loads_neither_numpy_nor_numba():
    # The scripts import it before setting the thread counts: it must not start a pool itself.
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import _common; "
        "print(sorted(m for m in ('numpy', 'numba') if m in sys.modules))"
    )
    result = _run([], code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_profile_step_splits_a_step_into_its_ops():
    result = _run([str(BENCH / "profile_step.py"), "--model", "unet", "--size", "32",
                   "--steps", "1", "--top", "3"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line[:34].strip(): line[34:].split() for line in lines[2:]}
    assert "Conv2dFn backward" in rows and "outside the ops" in rows
    others = [k for k in rows if k.endswith("other ops")]
    assert len(others) == 1  # --top 3: three ops, then the rest summed
    shares = [float(v[1].rstrip("%")) for k, v in rows.items() if v and v[1].endswith("%")]
    assert 99.0 <= sum(shares) <= 101.0  # the ops and the rest make up the step


def test_torch_is_imported_with_the_users_openmp_settings_not_minidenses(tmp_path):
    # minidense sets GOMP_SPINCOUNT for numba's OpenMP threads; torch's OpenMP reads it (and
    # OMP_WAIT_POLICY) when torch is imported. A stand-in "torch" records what it saw.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "import os\nSEEN = [os.environ.get(k, '-') for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')]\n"
        "def set_num_threads(n):\n    global THREADS\n    THREADS = n\n"
    )
    code = (
        f"import os, sys; sys.path[:0] = [{str(tmp_path)!r}, {str(BENCH)!r}]; import _common; "
        "import minidense; t = _common.import_torch(3); "
        "print(*t.SEEN, t.THREADS, os.environ['GOMP_SPINCOUNT'], "
        "_common.import_torch(3, 'no_such_module_here'), os.environ['GOMP_SPINCOUNT'])"
    )
    unset = "import os; [os.environ.pop(k, None) for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')]; "
    result = _run([], code=unset + code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["-", "-", "3", "10000", "None", "10000"]
    env = {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "7"}  # the user's choice holds
    result = _run([], env=env, code=code)
    assert result.stdout.split() == ["ACTIVE", "7", "3", "7", "None", "7"], result.stderr


# --------------------------------------------------------------------------------------------
# benchmarks/record.py: the benchmark record and its comparison with the last one
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def record():
    sys.path.insert(0, str(BENCH))
    try:
        import record as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def _bench(ms_ours, ms_numpy, ms_torch=None):
    times = {"minidense": ms_ours, "numpy": ms_numpy}
    if ms_torch is not None:
        times["torch"] = ms_torch
    return {"dense": {"threads": "numba threads=2", "ops": {"conv2d": times}}}


def _record(module, benches):
    return {"date": "2026-12-07", "commit": "abc1234", "runs": 3, "threads": 2,
            "machine": "2 CPU cores", "benches": benches, "ratios": module.ratios(benches)}  # fmt: skip


def test_a_script_writes_the_json_the_record_reads(tmp_path):
    out = tmp_path / "bench_unet.json"
    result = _run([str(BENCH / "bench_unet.py"), "--size", "32", "--batch", "1", "--repeat", "1",
                   "--json", str(out)])  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    # The layer minidense prefers (OpenMP; workqueue where numba finds no OpenMP) really ran.
    assert data["bench"] == "unet"
    assert "layer=omp" in data["threads"] or "layer=workqueue" in data["threads"]
    ((op, times),) = data["ops"].items()
    assert "1x3x32x32" in op and times["minidense"] > 0


def test_medians_over_runs_and_ratios(record):
    runs = [_bench(10.0, 20.0), _bench(30.0, 20.0), _bench(14.0, 40.0)]
    merged = record.median_of(runs)
    assert merged["dense"]["ops"]["conv2d"] == {"minidense": 14.0, "numpy": 20.0}
    assert record.ratios(merged) == {"dense: conv2d": {"numpy": 0.7}}


def test_a_ratio_more_than_one_and_a_half_times_worse_is_flagged(record):
    old = _record(record, _bench(10.0, 20.0, 10.0))  # 0.5 vs NumPy, 1.0 vs torch
    fine = _record(record, _bench(14.0, 20.0, 14.0))  # 1.4x worse: noise on this machine
    assert record.compare(fine, old) == []
    worse = _record(record, _bench(16.0, 20.0, 10.0))  # vs NumPy 0.5 -> 0.8, vs torch 1.0 -> 1.6
    assert [(op, name) for op, name, _, _ in record.compare(worse, old)] == [
        ("dense: conv2d", "numpy"), ("dense: conv2d", "torch")]  # fmt: skip
    # An op or baseline the last record lacks is not compared (no torch there: nothing to say).
    assert record.compare(worse, _record(record, _bench(10.0, 20.0))) == [
        ("dense: conv2d", "numpy", 0.5, 0.8)]  # fmt: skip


def test_the_docs_table_is_generated_from_the_newest_record(record, tmp_path):
    newest = record.latest(BENCH / "records")
    assert newest is not None, "benchmarks/records/ holds no record"
    docs = (BENCH.parent / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert f"{record.BEGIN}\n{record.markdown(newest)}\n{record.END}" in docs
    page = tmp_path / "page.md"
    page.write_text(f"# x\n{record.BEGIN}\nold\n{record.END}\ntail\n")
    record.update_docs(page, "new table")
    assert page.read_text() == f"# x\n{record.BEGIN}\nnew table\n{record.END}\ntail\n"
    page.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        record.update_docs(page, "t")


def test_the_table_compares_with_the_fastest_pytorch_build_and_says_so(record):
    times = {"minidense": 150.0, "pytorch": 90.0, "pytorch (stock torchvision)": 170.0,
             "pytorch (matmul RoIAlign)": 90.0}  # fmt: skip
    benches = {"maskrcnn": {"threads": "t", "ops": {"Mask R-CNN training step": times}}}
    rec = _record(record, benches)
    assert rec["ratios"]["maskrcnn: Mask R-CNN training step"]["pytorch (stock torchvision)"] == (
        150 / 170
    )
    table = record.markdown(rec)
    assert "| maskrcnn | Mask R-CNN training step | 150.0 | — | 1.67 |" in table
    assert "several builds of one model (matmul RoIAlign, stock torchvision)" in table
    assert "several builds" not in record.markdown(_record(record, _bench(10.0, 20.0, 10.0)))


def test_record_refuses_zero_runs():
    result = _run([str(BENCH / "record.py"), "--runs", "0"])
    assert result.returncode == 2 and "must be a positive integer" in result.stderr


def test_the_staged_mask_rcnn_forward_is_the_models_own():
    """bench_maskrcnn times MaskRCNN.forward cut into stages: the same losses, to the bit."""
    import numpy as np

    from minidense.data import ShapesInstances, default_collate
    from minidense.models.maskrcnn import MaskRCNN, MaskRCNNConfig

    saved = dict(os.environ)  # the script sets thread counts when imported: not for later tests
    sys.path.insert(0, str(BENCH))
    try:
        import bench_maskrcnn
    finally:
        sys.path.remove(str(BENCH))
        os.environ.clear()
        os.environ.update(saved)
    data = ShapesInstances(2, image_size=64, seed=0)
    images, targets = default_collate([data[0], data[1]])
    model = MaskRCNN(MaskRCNNConfig())
    marks = []
    staged = bench_maskrcnn.staged_losses(model, images, targets, np.random.default_rng(0),
                                          marks.append)  # fmt: skip
    own = model(images, targets, rng=np.random.default_rng(0))
    assert marks == ["backbone", "rpn", "roi heads"]
    assert sorted(staged) == sorted(own)
    for name, loss in own.items():
        assert staged[name].item() == loss.item(), name
