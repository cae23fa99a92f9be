"""Run every CPU benchmark several times and keep what they measured: the medians and the ratios
in a dated JSON record, a comparison with the last record, and the table in docs/benchmarks.md.

    python benchmarks/record.py [--runs 3] [--threads 2] [--out benchmarks/records] [--check]

Each run starts bench_dense, bench_roi, bench_unet and bench_maskrcnn in fresh processes, one
after the other;
a record keeps, per op and implementation, the median over the runs. A ratio is minidense's time
divided by a baseline's (NumPy, and torch/torchvision when importable): < 1 means minidense is
faster. A ratio more than 1.5x worse than in the last record is flagged (``--check``: exit 1),
because nothing else would notice a slowdown — an import order once made a U-Net step 3x slower.
Absolute times drift on a shared machine; ratios, measured in the same process, drift less.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import positive_int

HERE = Path(__file__).resolve().parent
BENCHES = ("bench_dense", "bench_roi", "bench_unet", "bench_maskrcnn")
WORSE = 1.5  # a ratio this many times the last record's is flagged
BEGIN, END = "<!-- benchmark-record:begin -->", "<!-- benchmark-record:end -->"


def run_once(threads, bench_args=()):
    """``{bench: {"threads": text, "ops": {op: {impl: ms}}}}`` from one run of every script."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for bench in BENCHES:
            path = os.path.join(tmp, f"{bench}.json")
            cmd = [sys.executable, str(HERE / f"{bench}.py"), "--threads", str(threads),
                   "--json", path, *bench_args]  # fmt: skip
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            out[data["bench"]] = {"threads": data["threads"], "ops": data["ops"]}
    return out


def median_of(runs):
    """The per-op, per-implementation median over several :func:`run_once` results."""
    merged = {}
    for run in runs:
        for bench, data in run.items():
            slot = merged.setdefault(bench, {"threads": data["threads"], "ops": {}})
            for op, times in data["ops"].items():
                for impl, ms in times.items():
                    slot["ops"].setdefault(op, {}).setdefault(impl, []).append(ms)
    for data in merged.values():
        data["ops"] = {op: {impl: statistics.median(v) for impl, v in times.items()}
                       for op, times in data["ops"].items()}  # fmt: skip
    return merged


def ratios(benches):
    """``{"bench: op": {baseline: minidense ms / baseline ms}}``."""
    out = {}
    for bench, data in benches.items():
        for op, times in data["ops"].items():
            ours = times["minidense"]
            out[f"{bench}: {op}"] = {k: ours / v for k, v in times.items() if k != "minidense"}
    return out


def compare(new, old, worse=WORSE):
    """``[(op, baseline, old ratio, new ratio)]`` for each ratio ``worse`` times the old one or
    more (ops or baselines missing from either record are not compared)."""
    flagged = []
    for op, base in new["ratios"].items():
        for name, ratio in base.items():
            before = old["ratios"].get(op, {}).get(name)
            if before is not None and ratio > worse * before:
                flagged.append((op, name, before, ratio))
    return flagged


def latest(folder, exclude=None):
    """The newest record in ``folder`` (their names start with the time), or None."""
    paths = sorted(p for p in Path(folder).glob("*.json") if p != exclude)
    return json.loads(paths[-1].read_text(encoding="utf-8")) if paths else None


def markdown(record):
    """The docs table of a record: each op's minidense time and its ratio to each baseline."""
    lines = [
        f"Recorded {record['date']} at git `{record['commit']}` by `python benchmarks/record.py` "
        f"(median of {record['runs']} runs; {record['machine']}).",
        "",
        "| benchmark | op | minidense ms | ratio to NumPy | ratio to PyTorch |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for bench, data in record["benches"].items():
        for op, times in data["ops"].items():
            base = record["ratios"][f"{bench}: {op}"]
            torch = next((v for k, v in base.items() if k in ("torch", "torchvision", "pytorch")),
                         None)  # fmt: skip
            cells = [f"{base['numpy']:.2f}" if "numpy" in base else "—",
                     f"{torch:.2f}" if torch is not None else "not installed"]  # fmt: skip
            lines.append(
                f"| {bench} | {op} | {times['minidense']:.1f} | " + " | ".join(cells) + " |"
            )
    lines += ["", "ratio = minidense's time / the baseline's (< 1: minidense faster)."]
    builds = sorted({name[len("pytorch (") : -1] for base in record["ratios"].values()
                     for name in base if name.startswith("pytorch (")})  # fmt: skip
    if builds:  # bench_maskrcnn times several PyTorch builds of one model: say which is compared
        lines[-1] += (
            f" Where PyTorch runs as several builds of one model ({', '.join(builds)}), its ratio "
            "is to the fastest in each run; the record keeps every build's times and ratios."
        )
    return "\n".join(lines)


def update_docs(path, table):
    """Replace the text between the record markers of ``path`` with ``table``."""
    text = Path(path).read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path}: no {BEGIN} ... {END} markers to put the table between")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    Path(path).write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


def _commit():
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--runs", type=positive_int, default=3, help="runs of every script (median)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--out", default=str(HERE / "records"), help="the records' folder")
    p.add_argument("--docs", default=str(HERE.parent / "docs" / "benchmarks.md"),
                   help="the page whose table is regenerated ('' for none)")  # fmt: skip
    p.add_argument("--check", action="store_true", help="exit 1 when a ratio got 1.5x worse")
    args = p.parse_args(argv)

    runs = []
    for k in range(args.runs):
        print(f"run {k + 1}/{args.runs} ...", flush=True)
        runs.append(run_once(args.threads))
    benches = median_of(runs)
    now = datetime.datetime.now()
    date = now.date().isoformat()
    record = {
        "date": date, "commit": _commit(), "runs": args.runs, "threads": args.threads,
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.system()}, "
                   f"Python {platform.python_version()}",
        "benches": benches, "ratios": ratios(benches),
    }  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    path = Path(args.out) / f"{now:%Y-%m-%dT%H%M}-{record['commit']}.json"  # sorts by time
    previous = latest(args.out, exclude=path)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    table = markdown(record)
    print(table)
    print(f"\nrecord: {path}")
    if args.docs:
        update_docs(args.docs, table)
        print(f"table: {args.docs}")
    if previous is None:
        print("no earlier record to compare with")
        return 0
    flagged = compare(record, previous)
    print(f"against {previous['date']} (git {previous['commit']}): "
          + (f"{len(flagged)} ratio(s) more than {WORSE}x worse" if flagged else "no ratio more "
             f"than {WORSE}x worse"))  # fmt: skip
    for op, name, before, now in flagged:
        print(f"  WORSE  {op} vs {name}: {before:.2f} -> {now:.2f}")
    return 1 if flagged and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
