"""The table and the verdict of ``check-cuda``.

A row per compiled launch (kernel, argument types): the architectures it assembled for, registers
per thread and shared memory per block on each, spilled bytes, the theoretical occupancy at the
block size the launch has on a GPU, and the float64 instructions in its PTX. Failures, each named:

* a launch that did not compile or assemble: its kernel, signature and the first error line;
* a kernel defined in the package that no launch reached (so nothing compiled it);
* a device function that no launched kernel calls;
* spills, and float64 instructions in a kernel whose float arrays are float32.
"""

__all__ = ["summarise", "print_table", "print_summary"]

ARCH_NAMES = ("sm_70", "sm_80", "sm_90")


def _per_arch(row, field, fmt="{}"):
    return "/".join(fmt.format(row["archs"][a][field]) if a in row["archs"] else "-"
                    for a in ARCH_NAMES)  # fmt: skip


def _fields(row):
    """The row's table cells after the signature."""
    if "error" in row:
        return ["FAILED: " + row["error"]]
    archs = " ".join(a[3:] for a in ARCH_NAMES if a in row["archs"])
    occ = "?"
    if row["gpu_threads"]:
        occ = _per_arch(row, "occupancy", "{:.0%}") + f" @{row['gpu_threads']}"
    spill = max(r["spill"] for r in row["archs"].values())
    return [archs, _per_arch(row, "registers"), str(spill), _per_arch(row, "smem"), occ,
            str(row["f64"]) + ("" if row["float32"] or not row["f64"] else " (f64 kernel)")]  # fmt: skip


HEADER = ["  argument types", "sm", "registers 70/80/90", "spill B", "smem B 70/80/90",
          "occupancy 70/80/90 @threads", "f64 instr."]  # fmt: skip


def print_table(rows, out):
    """Rows grouped by kernel, in name order; one line per signature."""
    lines = [HEADER]
    for name in sorted({r["kernel"] for r in rows}):
        lines.append([name])
        for row in sorted((r for r in rows if r["kernel"] == name), key=lambda r: r["signature"]):
            lines.append(["  " + row["signature"]] + _fields(row))
    widths = [max(len(ln[i]) for ln in lines if len(ln) > 1 and i < len(ln)) for i in range(7)]
    widths[0] = min(widths[0], 72)
    for ln in lines:
        if len(ln) == 1:
            print(ln[0], file=out)
        else:
            cells = [ln[0].ljust(widths[0])]  # then a failed row's one message, or the numbers
            cells += [c.ljust(w) for c, w in zip(ln[1:], widths[1:], strict=False)]
            print("  ".join(cells).rstrip(), file=out)


def summarise(rows, defined, idle_device_functions):
    """Counts, extremes and the list of failures (plain data, also written by ``--json``)."""
    ok = [r for r in rows if "error" not in r]
    launched = {tuple(r["key"]) for r in rows}
    never = sorted(f"{m}:{q.replace('.<locals>.', '.')}" for m, q in set(defined) - launched)
    failures = [f"{r['kernel']} ({r['signature']}): {r['error']}" for r in rows if "error" in r]
    failures += [f"{name}: defined but never launched, so never compiled" for name in never]
    failures += [f"{name}: device function that no launched kernel calls"
                 for name in idle_device_functions]  # fmt: skip
    spilling = [r for r in ok if any(a["spill"] for a in r["archs"].values())]
    failures += [f"{r['kernel']} ({r['signature']}): spills registers" for r in spilling]
    f64 = [r for r in ok if r["float32"] and r["f64"]]
    failures += [f"{r['kernel']} ({r['signature']}): {r['f64']} float64 instructions in a "
                 "float32 kernel" for r in f64]  # fmt: skip
    archs = [(a, r) for r in ok for a in r["archs"].values()]
    top = max(archs, key=lambda ar: ar[0]["registers"], default=(None, None))
    occ = [(a["occupancy"], r) for a, r in archs if "occupancy" in a]
    low = min(occ, key=lambda o: o[0], default=(None, None))
    return {
        "kernels_defined": len(defined),
        "kernels_launched": len(launched & set(defined)),
        "kernel_variants": len({r["kernel"] for r in rows}),
        "signatures": len(rows),
        "compiled": len(ok),
        "assemblies": sum(len(r["archs"]) for r in ok),
        "never_launched": never,
        "not_compiled": len(rows) - len(ok),
        "max_registers": top[0] and top[0]["registers"],
        "max_registers_kernel": top[1] and top[1]["kernel"],
        "max_smem": max((a["smem"] for a, _ in archs), default=0),
        "spill_bytes": sum(a["spill"] for a, _ in archs),
        "lowest_occupancy": low[0],
        "lowest_occupancy_kernel": low[1] and low[1]["kernel"],
        "f64_in_float32_kernels": sum(r["f64"] for r in ok if r["float32"]),
        "float32_signatures": sum(r["float32"] for r in ok),
        "failures": failures,
    }


def print_summary(s, out):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p()
    p(f"kernels: {s['kernels_defined']} defined, {s['kernels_launched']} launched "
      f"({s['kernel_variants']} with their factory variants), {len(s['never_launched'])} never "
      "launched")  # fmt: skip
    p(f"signatures: {s['signatures']} launched, {s['compiled']} compiled to PTX for "
      f"{', '.join(ARCH_NAMES)} and assembled by ptxas ({s['assemblies']} assemblies), "
      f"{s['not_compiled']} not compiled")  # fmt: skip
    if s["compiled"]:
        p(f"registers per thread: max {s['max_registers']} ({s['max_registers_kernel']}); "
          f"spills: {s['spill_bytes']} bytes; shared memory: max {s['max_smem']} bytes per block")  # fmt: skip
        if s["lowest_occupancy"] is not None:
            p(f"theoretical occupancy at the launch block size: lowest "
              f"{s['lowest_occupancy']:.0%} ({s['lowest_occupancy_kernel']})")  # fmt: skip
        p(f"float64 instructions in the {s['float32_signatures']} float32 signatures: "
          f"{s['f64_in_float32_kernels']}")  # fmt: skip
    if "seconds" in s:
        cached = f" ({s['from_cache']} of {s['signatures']} results from the cache)"
        p(f"time: {s['seconds']['record']:.0f} s recording the launches, "
          f"{s['seconds']['compile']:.0f} s compiling and assembling"
          + (cached if s.get("from_cache") else ""))  # fmt: skip
    if s["failures"]:
        p(f"\nFAILED ({len(s['failures'])}):")
        for f in s["failures"]:
            p(f"  {f}")
    else:
        p("OK: every kernel compiles for every architecture, with no spills and no float64 "
          "arithmetic in float32 kernels")  # fmt: skip
