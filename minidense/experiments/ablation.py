"""The Mask R-CNN ablation: RoIPool vs RoIWarp vs RoIAlign (strides 16 and 32), softmax vs sigmoid.

    from minidense.experiments.ablation import run_ablation
    report = run_ablation(preset="quick", seeds=1, out="runs/ablation")
    print(report.text)

Every variant trains on identical data, schedule and seeds and is evaluated on the same held-out
images. Each finished (variant, seed) is saved to ``out/runs/<variant>-seed<k>.json`` at once, so
an interrupted ablation started again skips what is done and loses nothing.
"""

import csv
import json
import os
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .executors import check_executor, run_tasks
from .maskrcnn import preset as training_preset
from .maskrcnn import train_maskrcnn
from .records import load_record
from .training import as_saved, check_choice, check_flags, fast_mode, prepare_out_dir

PRESETS = {
    # training preset per variant, default seeds
    "tiny": ("fast", 1),  # the tests' orchestration check
    "quick": ("ablation-quick", 1),  # 96 px, 8 epochs a variant
    "full": ("ablation", 3),  # 128 px, 10 epochs (AdamW lr 1e-3); both: objects of 0.4-0.8 image
    "full-c4": ("ablation-c4", 3),  # full, with the paper's C4 head at stride 16
}
METRICS = ("AP", "AP50", "AP75")
# He et al., ICCV 2017, Table 2c/2b (ResNet-50-C5 for the poolers; C4 for the mask loss).
PAPER = {
    ("roipool", 32, "sigmoid"): {"segm": (23.6, 46.5, 21.6), "bbox": (28.2, 52.7, 26.9)},
    ("roialign", 32, "sigmoid"): {"segm": (30.9, 51.8, 32.1), "bbox": (34.0, 55.3, 36.4)},
    ("roialign", 16, "softmax"): {"segm": (24.8, 44.1, 25.1)},
    ("roialign", 16, "sigmoid"): {"segm": (30.3, 51.2, 31.5)},
}


@dataclass(frozen=True)
class Variant:
    pooler: str
    stride: int
    mask_loss: str = "sigmoid"

    @property
    def name(self):
        return f"{self.pooler}-s{self.stride}-{self.mask_loss}"


def variants(strides=(16, 32)):
    """{roipool, roiwarp, roialign} × strides with sigmoid masks, plus softmax at stride 16."""
    vs = [Variant(p, s) for s in strides for p in ("roipool", "roiwarp", "roialign")]
    vs.append(Variant("roialign", 16, "softmax"))
    if Variant("roialign", 16) not in vs:
        vs.append(Variant("roialign", 16))  # softmax needs its sigmoid twin to compare with
    return vs


@dataclass
class Report:
    rows: dict  # variant name → {"segm": {metric: (mean, std)}, "bbox": {...}, "n": seeds}
    directions: list  # (statement, held: bool | None, detail)
    text: str
    # stride → {seed: mask ΔAP RoIAlign − RoIPool}, over the seeds that trained both
    gains: dict = field(default_factory=dict)


def run_ablation(preset="quick", seeds=None, strides=(16, 32), out="runs/ablation", progress=True,
                 plots=True, jobs=1, executor="local", scheduler=None):  # fmt: skip
    """Train every variant for every seed (skipping finished ones), then summarise.

    ``jobs``: how many variants train at once, each in its own worker process on this machine,
    the cores shared out so that workers × threads <= cores (a script that calls this with
    ``jobs`` > 1 needs ``if __name__ == "__main__":``, as any that starts processes does).
    ``executor="dask"`` with ``scheduler="tcp://HOST:8786"`` hands the variants to a running Dask
    cluster instead (the ``dask`` extra); ``out`` must then be a folder every worker reaches at
    the same path. Whichever runs them, every variant writes the same record to ``out/runs``.
    """
    check_choice("run_ablation", "preset", preset, PRESETS)
    check_flags("run_ablation", progress=progress, plots=plots)
    check_executor("run_ablation", jobs, executor, scheduler)
    train_preset, default_seeds = PRESETS[preset]
    if fast_mode():
        train_preset = "fast"
    seeds = default_seeds if seeds is None else seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if isinstance(strides, str) or not isinstance(strides, tuple | list):
        raise TypeError(f"strides must be a tuple of 16 and/or 32, got {strides!r}")
    bad = any(isinstance(s, bool) or s not in (16, 32) for s in strides)
    if bad or not strides or len(set(strides)) < len(strides):  # a repeat: one seed counted twice
        raise ValueError(f"strides must be a non-empty subset of (16, 32), got {strides}")
    prepare_out_dir(out)
    run_dir = os.path.join(out, "runs")
    os.makedirs(run_dir, exist_ok=True)

    # Seed-major: a run stopped after its first seed already holds a whole table.
    todo = [(v, s) for s in range(seeds) for v in variants(strides)]
    p = training_preset(train_preset)
    steps = -(-p["n_train"] // p["batch_size"]) * p["epochs"]
    done = {k: _load(run_dir, *k, settings_of(p, k[0])) for k in todo}
    remaining = [k for k in todo if done[k] is None]
    if executor == "dask" or (jobs > 1 and len(remaining) > 1):
        # Absolute: a worker elsewhere (or in another folder) writes where this process reads.
        tasks = [(v, s, train_preset, settings_of(p, v), os.path.abspath(run_dir))
                 for v, s in remaining]  # fmt: skip
        labels = [f"{v.name} seed {s}" for v, s in remaining]
        for i in run_tasks(train_variant, tasks, labels, jobs=jobs, executor=executor,
                           scheduler=scheduler, progress=progress,
                           finished_before=len(todo) - len(remaining)):  # fmt: skip
            v, s = remaining[i]
            done[(v, s)] = _load_written(run_dir, v, s, settings_of(p, v))
    else:
        bar = tqdm(total=len(todo) * steps, initial=(len(todo) - len(remaining)) * steps,
                   disable=not progress, desc="ablation", unit="step")  # fmt: skip
        for v, s in remaining:
            bar.set_description(f"ablation [{v.name} seed {s}]")
            done[(v, s)] = train_variant(v, s, train_preset, settings_of(p, v), run_dir, bar)
        bar.close()

    report = summarise([done[k] for k in todo])
    _write_outputs(out, report, [done[k] for k in todo], plots)
    return report


def train_variant(v, seed, train_preset, settings, run_dir, bar=None):
    """Train variant ``v`` with ``seed`` and save its record in ``run_dir``; return the record.
    What every executor runs, so a record is the same wherever it was trained."""
    r = train_maskrcnn(v.pooler, v.stride, v.mask_loss, seed=seed, preset_name=train_preset,
                       progress=False, plots=False, bar=bar)  # fmt: skip
    # The per-epoch training losses: a record of how it trained, not just where it ended.
    record = {"variant": v.name, "pooler": v.pooler, "stride": v.stride,
              "mask_loss": v.mask_loss, "seed": seed, "preset": train_preset,
              "settings": settings, "segm": r["segm"], "bbox": r["bbox"],
              "history": r["history"], "seconds": r["seconds"]}  # fmt: skip
    _save(run_dir, v, seed, record)
    return record


def _load_written(run_dir, v, seed, settings):
    """The record a worker reports written, read back here: the report is built from the files
    in ``run_dir``, which a worker on another machine reaches only through a shared folder."""
    record = _load(run_dir, v, seed, settings)
    if record is None:
        raise RuntimeError(
            f"a worker finished {v.name} seed {seed}, but {_path(run_dir, v, seed)} is not "
            "here: --out must be a folder every worker reaches at the same path (a shared "
            "file system)"
        )
    return record


# Model options that change only one stride's variants (MaskRCNNConfig: the per-RoI fifth stage
# at stride 16, residual blocks in the stride-32 stage), and the stride they leave untouched.
_ONE_STRIDE_OPTIONS = {"c4_head": 32, "c5_blocks": 16}


def settings_of(preset, v):
    """What variant ``v``'s record stores as its training settings (JSON form): the preset, less
    the model options that do not touch ``v``'s stride, so that a preset which adds one (say
    ``c4_head``) keeps the records of the other stride's variants, trained identically."""
    settings = as_saved(preset)
    model = settings.get("model")
    if model:
        settings["model"] = {k: x for k, x in model.items()
                             if _ONE_STRIDE_OPTIONS.get(k) != v.stride}  # fmt: skip
    return settings


def _path(run_dir, v, seed):
    return os.path.join(run_dir, f"{v.name}-seed{seed}.json")


def _load(run_dir, v, seed, settings):
    """The finished record of (variant, seed), or None; a record trained with other settings
    (another preset, or an older version of this one) is an error, never silently mixed in."""
    path = _path(run_dir, v, seed)
    try:
        with open(path) as f:
            record = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # missing or torn by an interruption: train it (again)
    if record.get("settings") != settings:
        raise ValueError(
            f"{path} was trained with other settings ({record.get('settings')}) than this "
            f"ablation's ({settings}): give another --out, or move that folder away"
        )
    return record


def _save(run_dir, v, seed, record):
    path = _path(run_dir, v, seed)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a finished variant is never half-written


def summarise(records):
    """Mean ± std over seeds per variant, the paper-style tables and the directions."""
    by_variant = {}
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r)
    rows = {}
    for name, rs in by_variant.items():
        row = {"n": len(rs), "pooler": rs[0]["pooler"], "stride": rs[0]["stride"],
               "mask_loss": rs[0]["mask_loss"]}  # fmt: skip
        for kind in ("segm", "bbox"):
            vals = np.array([[100 * r[kind][m] for m in METRICS] for r in rs])
            row[kind] = {m: (float(vals[:, i].mean()), float(vals[:, i].std()))
                         for i, m in enumerate(METRICS)}  # fmt: skip
        rows[name] = row
    gains = _per_seed_gains(records)
    directions = _directions(rows, gains)
    return Report(rows, directions, _format(rows, directions), gains)


def measured_report(name="ablation_full"):
    """``(Report, about)`` of an ablation run shipped with minidense (``records/NAME.json``):
    the tables, chart and directions of a full run, without the wait; ``about`` says how it was
    measured and reproduced."""
    record = load_record(name)
    return summarise(record["runs"]), record["about"]


def _align_and_pool(stride):
    """The names of the two variants whose difference is the gain at ``stride``."""
    return Variant("roialign", stride).name, Variant("roipool", stride).name


def _per_seed_gains(records):
    """stride → {seed: mask ΔAP RoIAlign − RoIPool}, pairing runs that share a seed (and so
    their data, initialisation and sampling): the spread says whether a direction is noise."""
    by = {(r["variant"], r["seed"]): r for r in records}
    gains = {}
    for s in (16, 32):
        a, p = _align_and_pool(s)
        seeds = sorted(k for v, k in by if v == a and (p, k) in by)
        if seeds:
            gains[s] = {k: 100 * (by[a, k]["segm"]["AP"] - by[p, k]["segm"]["AP"]) for k in seeds}
    return gains


def _mean(rows, name, kind, metric):
    return rows[name][kind][metric][0] if name in rows else None


def _directions(rows, per_seed=None):
    """The paper's four claims, each checked on the means (None = not measured here);
    ``per_seed`` (stride → {seed: ΔAP}) adds each seed's gain to the details."""
    per_seed = per_seed or {}
    out = []
    gains = {}
    for s in (16, 32):
        a, p = _align_and_pool(s)
        if a in rows and p in rows:
            gains[s] = {m: _mean(rows, a, "segm", m) - _mean(rows, p, "segm", m) for m in METRICS}
    for s, g in sorted(gains.items()):
        detail = f"ΔAP = {g['AP']:+.1f}"
        if len(per_seed.get(s, ())) > 1:
            detail += "; per seed " + ", ".join(f"{d:+.1f}" for d in per_seed[s].values())
        out.append((f"RoIAlign > RoIPool in mask AP at stride {s}", g["AP"] > 0, detail))
    for s, g in sorted(gains.items()):
        held = g["AP75"] > g["AP50"]
        out.append((f"the gain is larger at AP75 than at AP50 (stride {s})", held,
                    f"ΔAP50 = {g['AP50']:+.1f}, ΔAP75 = {g['AP75']:+.1f}"))  # fmt: skip
    if 16 in gains and 32 in gains:
        detail = f"ΔAP s16 = {gains[16]['AP']:+.1f}, s32 = {gains[32]['AP']:+.1f}"
        g16, g32 = per_seed.get(16, {}), per_seed.get(32, {})
        pairs = [(g16[k], g32[k]) for k in g16 if k in g32]
        if len(pairs) > 1:
            detail += f"; larger at s32 in {sum(b > a for a, b in pairs)} of {len(pairs)} seeds"
        # The relative cost of misalignment, for reading a NO: the verdict stays the paper's
        # absolute one (docs/ablation.md, "Why").
        kept = {}
        for s in (16, 32):
            a, p = _align_and_pool(s)
            align = _mean(rows, a, "segm", "AP")
            if align > 0:
                kept[s] = _mean(rows, p, "segm", "AP") / align
        if len(kept) == 2:
            detail += (f"; RoIPool keeps {kept[16]:.0%} of RoIAlign's mask AP at s16, "
                       f"{kept[32]:.0%} at s32")  # fmt: skip
        out.append(("the gain is larger at stride 32 than at stride 16",
                    gains[32]["AP"] > gains[16]["AP"], detail))  # fmt: skip
    sig, soft = "roialign-s16-sigmoid", "roialign-s16-softmax"
    if sig in rows and soft in rows:
        d = _mean(rows, sig, "segm", "AP") - _mean(rows, soft, "segm", "AP")
        out.append(("per-class sigmoid masks > softmax masks (stride 16)", d > 0,
                    f"ΔAP = {d:+.1f}"))  # fmt: skip
    return out


def _cell(ms):
    mean, std = ms
    return f"{mean:5.1f}±{std:4.1f}"


def _format(rows, directions):
    lines = []
    for kind, title in (("segm", "mask"), ("bbox", "box")):
        lines.append(f"{title} AP (%, mean ± std over seeds)")
        lines.append(f"{'variant':<26}" + "".join(f"{m:>12}" for m in METRICS) + "   seeds")
        for name, row in rows.items():
            lines.append(f"{name:<26}" + "".join(f"{_cell(row[kind][m]):>12}" for m in METRICS)
                         + f"   {row['n']}")  # fmt: skip
        for s in (16, 32):
            a, p = _align_and_pool(s)
            if a in rows and p in rows:
                delta = "".join(
                    f"{rows[a][kind][m][0] - rows[p][kind][m][0]:>+12.1f}" for m in METRICS
                )
                lines.append(f"{'Δ RoIAlign − RoIPool s' + str(s):<26}{delta}")
        lines.append("")
    lines.append("paper (He et al. 2017), mask AP / AP50 / AP75:")
    for (pool, s, loss), v in PAPER.items():
        lines.append(f"  {pool}-s{s}-{loss:<8} " + " / ".join(f"{x:.1f}" for x in v["segm"]))
    lines.append("")
    lines.append("did the paper's directions hold here?")
    for text, held, detail in directions:
        verdict = "yes" if held else "NO"
        lines.append(f"  [{verdict:>3}] {text}  ({detail})")
    return "\n".join(lines)


def _write_outputs(out, report, records, plots):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(
            {"rows": report.rows, "directions": report.directions,
             "per_seed_gains": report.gains, "runs": records}, f, indent=1,
        )  # fmt: skip
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "seeds"] + [f"{k}_{m}_{s}" for k in ("segm", "bbox") for m in METRICS
                                           for s in ("mean", "std")])  # fmt: skip
        for name, row in report.rows.items():
            w.writerow([name, row["n"]] + [f"{row[k][m][i]:.3f}" for k in ("segm", "bbox")
                                           for m in METRICS for i in (0, 1)])  # fmt: skip
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(report.text + "\n")
    if plots:
        plot_ablation(report, os.path.join(out, "ablation.png"))


def plot_ablation(report, path=None):
    """Grouped bars: mask AP, AP50, AP75 per variant, with std error bars."""
    import matplotlib.pyplot as plt

    names = list(report.rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    x = np.arange(len(METRICS))
    width = 0.8 / max(len(names), 1)
    for ax, kind, title in zip(axes, ("segm", "bbox"), ("mask AP", "box AP"), strict=True):
        for i, name in enumerate(names):
            ms = [report.rows[name][kind][m] for m in METRICS]
            ax.bar(x + i * width, [m for m, _ in ms], width, yerr=[s for _, s in ms], label=name,
                   capsize=2)  # fmt: skip
        ax.set_xticks(x + width * (len(names) - 1) / 2, METRICS)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("%")
    # Below the bars, not over them: the tallest ones are box AP50/AP75, where a legend sat.
    handles, labels = axes[0].get_legend_handles_labels()
    rows = -(-len(names) // 4)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(names), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
