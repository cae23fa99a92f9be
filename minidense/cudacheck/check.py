"""``python -m minidense check-cuda``: compile every CUDA kernel of minidense for real GPUs, without
one, with the argument types it is really launched with.

1. **Record** (a subprocess under the CUDA simulator): run the built-in workload (workload.py) and
   note each distinct launch; launch files recorded elsewhere (the test suite's) are added.
2. **Find** every kernel defined in the package (inventory.py): one that no launch reached is a
   failure, because nothing would compile it.
3. **Compile** (this process, simulator off) every launch to PTX for compute capability 7.0, 8.0
   and 9.0 with NVVM and assemble it with ``ptxas -v`` for sm_70, sm_80 and sm_90: registers,
   spills, shared memory; count the float64 instructions; compute the occupancy at the launch's
   GPU block size.
4. **Report** (report.py) the table and the verdict; exit 0, 1 (a failure) or 2 (no toolchain).
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import types

from . import compile as nv
from . import inventory, record, refs, report
from .cache import ResultCache
from .occupancy import occupancy

__all__ = ["run_check", "record_workload", "compile_launches"]


def record_workload():
    """Launches of the built-in workload, recorded in a subprocess under the CUDA simulator."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "launches.json")
        run = subprocess.run(
            [sys.executable, "-m", "minidense.cudacheck.workload", path],
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise RuntimeError(f"the workload failed under the simulator:\n{run.stderr[-3000:]}")
        return record.load(path)


def _compile_one(launch, ptxas, pool):
    """Compile one launch for every CC; returns its result row (see report.py)."""
    ref = launch["kernel"]
    row = {
        "kernel": refs.kernel_name(ref),
        "key": list(inventory.kernel_key(ref)),
        "signature": ", ".join(refs.show_type(t) for t in launch.get("args", ())),
        "gpu_threads": launch.get("gpu_threads"),
        "float32": _is_float32(launch.get("args", ())),
    }
    if "error" in launch:
        row["error"] = f"not compiled: {launch['error']}"
        return row
    try:
        fn = refs.resolve_kernel(ref)
        argtypes = [refs.type_from_json(t) for t in launch["args"]]
        ptxes = {cc: nv.compile_ptx(fn, argtypes, cc) for cc in nv.CCS}
    except Exception as e:  # noqa: BLE001 - every compiler error is reported, not raised
        row["error"] = f"{type(e).__name__}: {nv.first_error_line(str(e))}"
        return row
    row["f64"] = max(nv.count_f64(p) for p in ptxes.values())
    row["archs"] = {cc: pool.submit(nv.assemble, ptxas, ptx, cc) for cc, ptx in ptxes.items()}
    return row


def _is_float32(args):
    """A launch whose float arrays are all float32 (and there is one)."""
    floats = {a["array"] for a in args if "array" in a and a["array"].startswith("float")}
    return floats == {"float32"}


def _finish(row):
    """Wait for the row's ptxas runs; add occupancy at the GPU block size."""
    archs = {}
    for cc, future in row.pop("archs", {}).items():
        archs[f"sm_{cc[0]}{cc[1]}"] = res = future.result()
        if "error" in res:
            row.setdefault("error", res["error"])
        elif row["gpu_threads"]:
            res["occupancy"] = occupancy(cc, row["gpu_threads"], res["registers"], res["smem"])
    row["archs"] = archs


def compile_launches(launches, ptxas, results):
    """Result rows of every launch, in order: from the ``results`` cache, or compiled now (ptxas
    runs in threads while NVVM compiles the next launch)."""
    rows, fresh = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for launch in launches:
            row = results.get(launch)
            if row is None:
                row = _compile_one(launch, ptxas, pool)
                fresh.append((launch, row))
            rows.append(row)
        for launch, row in fresh:
            _finish(row)
            results.put(launch, row)
    return rows


def _device_functions_called(fn):
    """The CUDA device functions that the Python function ``fn`` names (globals and closure)."""
    codes, names = [fn.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    values = [fn.__globals__.get(n) for n in names] + [
        c.cell_contents for c in fn.__closure__ or ()
    ]
    return [v for v in values if inventory.is_device_function(v)]


def _idle_device_functions(launches):
    """Package-level device functions that no launched kernel calls, directly or through others.

    Found by reading the names the kernels use, not from what this run compiled, so that it holds
    when the results come from the cache."""
    used, todo = set(), []
    for launch in launches:
        try:
            todo.append(refs.resolve_kernel(launch["kernel"]))
        except refs.RefError:
            continue  # reported as not compiled
    while todo:
        for device_fn in _device_functions_called(todo.pop()):
            if id(device_fn) not in used:
                used.add(id(device_fn))
                todo.append(device_fn.py_func)
    idle = set()
    for module in refs.package_modules():
        for attr, value in list(vars(module).items()):
            for key, fn in value.items() if isinstance(value, dict) else [(None, value)]:
                if inventory.is_device_function(fn) and id(fn) not in used:
                    where = f"{module.__name__}.{attr}" + (f"[{key!r}]" if key else "")
                    idle.add(f"{fn.py_func.__qualname__} ({where})")
    return sorted(idle)


def run_check(launch_files=(), workload=True, json_path=None, use_cache=True, out=sys.stdout):
    """The whole check; returns the exit code (0 ok, 1 a failure, 2 no toolchain)."""
    try:
        ptxas = nv.find_ptxas()
    except nv.ToolchainMissing as e:
        print(f"check-cuda: {e}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = ResultCache(ptxas, enabled=use_cache)
    if not workload:
        from_workload = record.Launches()
    elif results.workload is not None:
        from_workload = record.Launches(results.workload)
    else:
        try:
            from_workload = record_workload()
        except RuntimeError as e:
            print(f"check-cuda: {e}", file=sys.stderr)
            return 1
        results.workload = list(from_workload)
    launches = record.Launches(from_workload)
    for path in launch_files:
        launches.update(record.load(path))
    recorded = time.perf_counter()
    defined = inventory.defined_kernels()
    cached = sum(results.get(launch) is not None for launch in launches)
    rows = compile_launches(launches, ptxas, results)
    results.save()
    result = report.summarise(rows, defined, _idle_device_functions(launches))
    result["from_cache"] = cached
    result["seconds"] = {"record": recorded - started, "compile": time.perf_counter() - recorded}
    report.print_table(rows, out)
    report.print_summary(result, out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"rows": rows, "summary": result, "workload": list(from_workload)}, f)
    return 1 if result["failures"] else 0
