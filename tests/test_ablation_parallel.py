"""The ablation trained for real on the tiny preset (one stride, four variants): one after another,
in two worker processes (``jobs=2``) and on a local Dask cluster, which must all write the same
records; and how ``jobs``, ``executor`` and ``scheduler`` are checked."""

import json
import os
import sys

import pytest

from minidense.__main__ import main
from minidense.experiments import ablation as A
from minidense.experiments import executors as E

TINY = dict(preset="tiny", seeds=1, strides=(16,), plots=False)


def _records(out):
    """Every record in ``out/runs``, without the one field that may differ: the training time."""
    runs = os.path.join(out, "runs")
    records = {}
    for name in sorted(os.listdir(runs)):
        record = json.load(open(os.path.join(runs, name)))
        assert record.pop("seconds") > 0
        records[name] = record
    return records


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serial"))
    return A.run_ablation(out=out, progress=False, **TINY), _records(out)


def test_tiny_preset_really_trains(serial):
    # One real run of the smallest preset: the wiring to train_maskrcnn and COCO AP is exercised.
    report, records = serial
    assert len(report.rows) == 4
    for row in report.rows.values():
        for kind in ("segm", "bbox"):
            assert all(0.0 <= row[kind][m][0] <= 100.0 for m in A.METRICS)
    record = records["roialign-s16-sigmoid-seed0.json"]
    assert record["preset"] == "fast" and record["settings"]["image_size"] == 64
    # The training losses of its one epoch: numbers that depend on every step it took.
    (epoch,) = record["history"]
    assert epoch["epoch"] == 1 and 0 < epoch["loss_mask"] < 10


def test_two_worker_processes_write_the_serial_records(serial, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(E, "available_cores", lambda: 2)  # two workers even on a 1-core runner
    report = A.run_ablation(out=str(tmp_path), progress=True, jobs=2, **TINY)
    assert "4 variants on 2 worker processes × 1 thread each, 2 cores" in capsys.readouterr().out
    assert _records(str(tmp_path)) == serial[1]
    assert report.text == serial[0].text
    assert not [f for f in os.listdir(tmp_path / "runs") if f.endswith(".tmp")]


def test_a_local_dask_cluster_writes_the_serial_records(serial, tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason='the dask extra is not installed (pip install -e ".[dask]")'
    )
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:  # fmt: skip
        report = A.run_ablation(out=str(tmp_path), progress=False, executor="dask",
                                scheduler=cluster.scheduler_address, **TINY)  # fmt: skip
    assert _records(str(tmp_path)) == serial[1]
    assert report.text == serial[0].text


def test_dask_workers_that_run_several_tasks_at_once_are_refused(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason='the dask extra is not installed (pip install -e ".[dask]")'
    )
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with pytest.raises(ValueError, match=r"one task at a time.*--nthreads 1"):
            A.run_ablation(out=str(tmp_path), progress=False, executor="dask",
                           scheduler=cluster.scheduler_address, **TINY)  # fmt: skip
    assert os.listdir(tmp_path / "runs") == []


def test_without_the_dask_extra_the_message_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    with pytest.raises(RuntimeError, match=r"needs Dask's distributed.*minidense\[dask\]"):
        A.run_ablation(out=str(tmp_path), executor="dask", scheduler="tcp://h:8786", **TINY)
    out = str(tmp_path / "cli")
    code = main(["ablate", "--preset", "tiny", "--executor", "dask", "--scheduler", "tcp://h:8786",
                 "--out", out])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: executor 'dask' needs Dask's distributed")
    assert 'pip install "minidense[dask]"' in err and not os.path.exists(out)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(jobs=0), ValueError, "jobs must be a positive integer, got 0"),
        (dict(jobs=2.0), TypeError, r"jobs must be a positive integer, got 2\.0"),
        (dict(jobs=True), TypeError, "jobs must be a positive integer, got True"),
        (dict(executor="ray"), ValueError, r"executor must be one of \('local', 'dask'\)"),
        (dict(executor="dask"), ValueError, "executor='dask' needs scheduler"),
        (dict(executor="dask", scheduler=" "), ValueError, "needs scheduler"),
        (dict(executor="dask", scheduler="tcp://h:8786", jobs=2), ValueError, "jobs is for"),
        (dict(scheduler="tcp://h:8786"), ValueError, "scheduler is only for executor='dask'"),
    ],
)
def test_bad_executor_arguments_are_named(kwargs, error, match, tmp_path):
    with pytest.raises(error, match=match):
        A.run_ablation(out=str(tmp_path / "out"), progress=False, **TINY, **kwargs)
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_the_command_line_names_the_missing_scheduler(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["ablate", "--preset", "tiny", "--executor", "dask", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run_ablation: executor='dask' needs scheduler")
    assert "--scheduler tcp://HOST:8786" in err and not os.path.exists(out)


@pytest.mark.parametrize(
    "jobs, tasks, cores, plan",
    [(2, 4, 2, (2, 1)), (4, 21, 16, (4, 4)), (3, 21, 16, (3, 5)), (8, 21, 2, (2, 1)),
     (8, 3, 16, (3, 5)), (1, 21, 16, (1, 16))],
)  # fmt: skip
def test_workers_times_threads_never_exceed_the_cores(jobs, tasks, cores, plan):
    workers, threads = E.plan_workers(jobs, tasks, cores)
    assert (workers, threads) == plan and workers * threads <= cores


def test_a_record_a_worker_wrote_out_of_reach_is_an_error(tmp_path):
    """A Dask worker on another machine writes to its own disk when --out is not shared."""
    v = A.Variant("roialign", 16)
    with pytest.raises(RuntimeError, match=r"roialign-s16-sigmoid-seed0.json is not here: --out "
                                           r"must be a folder every worker reaches"):  # fmt: skip
        A._load_written(str(tmp_path), v, 0, {})


def _fail_on(value, bad):
    if value == bad:
        raise ValueError(f"task {value} failed")
    return value


def test_a_worker_error_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(E, "available_cores", lambda: 2)
    finished = []
    with pytest.raises(ValueError, match="task 1 failed"):
        for i in E.run_tasks(_fail_on, [(0, 1), (1, 1)], ["a", "b"], jobs=2, progress=False):
            finished.append(i)
    assert finished in ([], [0])
