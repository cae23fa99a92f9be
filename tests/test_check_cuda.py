"""The CUDA compile check, ``python -m minidense check-cuda``: every kernel compiled by NVVM and
assembled by ptxas for sm_70/80/90 with the argument types it is launched with, and its parts.

The tests run under the CUDA simulator, which compiles nothing, so the check itself runs in a
fresh process with the simulator off. The last test of the session compiles every launch that the
other tests recorded (conftest.py), plus the check's own workload.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from minidense import gpu
from minidense.backend.cuda import elementwise, ufuncs
from minidense.cudacheck import cache, inventory, record, refs
from minidense.cudacheck import compile as nv
from minidense.cudacheck.occupancy import occupancy
from minidense.kernels import max_pool
from tests import cuda_kernels_refused as refused

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR = bool(numba.config.ENABLE_CUDASIM)
needs_simulator = pytest.mark.skipif(not SIMULATOR, reason="records launches under the simulator")


def check_cuda(*args, code=None):
    """Run ``check-cuda ARGS`` (or ``python -c CODE``) with the simulator off, from the repository
    root; skip the test, with check-cuda's own message, when the CUDA compilers are not installed."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = ["-c", code] if code else ["-m", "minidense", "check-cuda", *args]
    run = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    if code is None and run.returncode == 2 and nv.INSTALL_HINT in run.stderr:
        pytest.skip(f"the CUDA compilers are not installed: {run.stderr.strip()}")
    return run


def launch_record(kernel, *arrays):
    return {"kernel": refs.describe_kernel(kernel.py_func),
            "args": [refs.type_to_json(numba.typeof(a)) for a in arrays]}  # fmt: skip


# ------------------------------------------------------------------------------- the command


def test_without_the_compilers_check_cuda_says_what_to_install_and_exits_2():
    hide_ptxas = (
        "import shutil, sys; import minidense.cudacheck.compile as c; "
        "c.find_nvidia_binary_utility = None; shutil.which = lambda *a, **k: None; "
        "from minidense.__main__ import main; sys.exit(main(['check-cuda']))"
    )
    run = check_cuda(code=hide_ptxas)
    assert run.returncode == 2, run.stderr
    assert "ptxas not found" in run.stderr and 'pip install -e ".[cuda]"' in run.stderr


def test_under_the_simulator_check_cuda_refuses_to_run():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    run = subprocess.run([sys.executable, "-m", "minidense", "check-cuda"], cwd=ROOT, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2
    assert "simulator is on" in run.stderr and "unset it" in run.stderr


def test_kernels_the_simulator_runs_but_the_compilers_refuse_fail_the_check(tmp_path):
    out = np.zeros(1, np.float32)
    if SIMULATOR:  # the point: under the simulator both run, and the tests would stay green
        refused.calls_a_python_function[1, 1](out)
        refused.uses_too_much_shared_memory[1, 4](out)
        assert out[0] == 2
    launches = tmp_path / "launches.json"
    records = [launch_record(k, out) for k in
               (refused.calls_a_python_function, refused.uses_too_much_shared_memory)]  # fmt: skip
    launches.write_text(json.dumps(records))
    run = check_cuda("--no-workload", "--launches", str(launches))
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for name, error in (("calls_a_python_function", "Untyped global name '_plus_one'"),
                        ("uses_too_much_shared_memory", "uses too much shared data")):  # fmt: skip
        row = lines[lines.index(f"tests.cuda_kernels_refused:{name}") + 1]
        assert row.lstrip().startswith("f32[1d]") and "FAILED" in row and error in row, row
    assert "launched, 0 compiled" in run.stdout


@pytest.mark.run_last
def test_every_kernel_compiles_for_real_gpus_without_spills_or_float64_in_float32_kernels(
    request, tmp_path
):
    """check-cuda on its workload plus every launch of this session; with the whole suite, also
    that the tests launch every kernel the workload does, in each of its float dtypes (the
    simulator twins)."""
    args = ["--json", str(tmp_path / "result.json")]
    session = request.config.cuda_launches
    if session is not None:
        record.save(session, tmp_path / "tests.json")
        args += ["--launches", str(tmp_path / "tests.json")]
    run = check_cuda(*args)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    s = result["summary"]
    assert s["kernels_defined"] == len(inventory.defined_kernels()) > 0
    assert s["never_launched"] == [] and s["kernels_launched"] == s["kernels_defined"]
    assert s["not_compiled"] == 0 and s["compiled"] == s["signatures"] > 0
    assert s["assemblies"] == len(nv.CCS) * s["compiled"]
    assert s["spill_bytes"] == 0
    assert s["float32_signatures"] > 0 and s["f64_in_float32_kernels"] == 0
    assert all(r["gpu_threads"] for r in result["rows"]), "every launch says its GPU block size"
    again = check_cuda(*args)  # nothing changed: every result comes from the cache, the same
    n = s["signatures"]
    assert again.returncode == 0 and f"({n} of {n} results from the cache)" in again.stdout
    assert json.loads((tmp_path / "result.json").read_text())["rows"] == result["rows"]
    if session is None or not request.config.cuda_whole_suite:
        return  # a part of the suite (or a real GPU): what "the tests" launch is not known
    missing = sorted(_twin_keys(result["workload"]) - _twin_keys(session))
    assert not missing, "no simulator test launches these kernels with these float dtypes:\n" + (
        "\n".join(f"  {name} {dtypes}" for name, dtypes in missing)
    )


def _twin_keys(launches):
    """(kernel with its factory variant, float dtypes of its arrays) of each launch."""
    return {
        (refs.kernel_name(r["kernel"]),
         tuple(sorted({a["array"] for a in r["args"] if a.get("array", "").startswith("float")})))
        for r in launches
    }  # fmt: skip


# ------------------------------------------------------------------------------- the parts


def test_occupancy_follows_the_calculator():
    # 128 threads, 40 registers: 1280 registers a warp, 51 warps fit, 12 blocks of 4 -> 48/64.
    assert occupancy((7, 0), 128, 40, 0) == 0.75
    assert occupancy((8, 0), 256, 32, 0) == 1.0
    # 128 registers: 4096 a warp, 16 warps -> 2 blocks of 8 warps.
    assert occupancy((9, 0), 256, 128, 0) == 0.25
    # 48 KB of shared memory a block: 2 blocks on sm_70 (96 KB), 3 on sm_80 (164 KB, 1 KB each
    # reserved), 4 on sm_90 (228 KB).
    assert [occupancy(cc, 256, 16, 48 << 10) for cc in nv.CCS] == [0.25, 0.375, 0.5]
    assert occupancy((8, 0), 32, 16, 0) == 0.5  # 32 blocks of one warp at most


def test_count_f64_counts_float64_arithmetic_not_data_movement():
    ptx = """
        ld.global.f64   %fd1, [%rd1];
        cvt.rn.f32.f64  %f1, %fd1;
        add.f32         %f2, %f1, %f1;
        fma.rn.f64      %fd2, %fd1, %fd1, %fd1;
        @%p1 bra        $L__BB0_2;
        @!%p2 setp.lt.f64 %p3, %fd2, 0d0000000000000000;
        st.global.f64   [%rd2], %fd2;
        mov.f64         %fd3, %fd2;
    """
    assert nv.count_f64(ptx) == 3  # cvt, fma, setp


def test_first_error_line_skips_numba_headers_and_shortens_mangled_names():
    msg = "Failed in cuda mode pipeline (step: nopython frontend)\nUntyped global name 'f'\nmore"
    assert nv.first_error_line(msg) == "Untyped global name 'f'"
    assert nv.first_error_line("ptxas error : Entry function '_ZN4abc1kE' uses too much") == (
        "ptxas error : Entry function '<kernel>' uses too much"
    )


def test_argument_types_round_trip_through_plain_data():
    types = [
        numba.types.float32[:, ::1], numba.types.Array(numba.types.int64, 3, "A", readonly=True),
        numba.types.float64[::1, :], numba.types.boolean, numba.types.int32, numba.types.float32,
        numba.types.UniTuple(numba.types.int64, 8),
        numba.types.Tuple((numba.types.int64, numba.types.float64)),
    ]  # fmt: skip
    for t in types:
        assert refs.type_from_json(json.loads(json.dumps(refs.type_to_json(t)))) == t
    assert refs.show_type(refs.type_to_json(types[0])) == "f32[2d]"
    assert refs.show_type(refs.type_to_json(types[1])) == "i64[3d,A,ro]"
    assert refs.show_type(refs.type_to_json(types[6])) == "(int64 x8)"
    with pytest.raises(refs.RefError, match="not an array, a number or a tuple"):
        refs.type_to_json(numba.types.unicode_type)


def test_a_factory_kernel_is_found_again_from_its_plain_data_name():
    # made by a factory: a closure over the device function
    kernel = elementwise.kernel_for(elementwise._make_map, "exp")
    ref = json.loads(json.dumps(refs.describe_kernel(kernel.py_func)))
    assert ref["closure"] == [{"name": "op", "module": "minidense.backend.cuda.ufuncs",
                               "attr": "DEVICE_FNS", "key": "'exp'"}]  # fmt: skip
    assert refs.kernel_name(ref) == "backend.cuda.elementwise:_make_map.map_kernel[op=exp]"
    found = refs.resolve_kernel(ref)
    assert found.__code__ is kernel.py_func.__code__
    assert found.__closure__[0].cell_contents is ufuncs.DEVICE_FNS["exp"]
    top = refs.describe_kernel(max_pool.max_pool2d_forward_cuda.py_func)
    assert refs.resolve_kernel(top) is max_pool.max_pool2d_forward_cuda.py_func
    with pytest.raises(refs.RefError, match="source changed"):
        refs.resolve_kernel(dict(top, line=top["line"] + 1))


def test_a_closure_over_a_local_object_cannot_be_named():
    local = object()

    def kernel(out):
        out[0] = local is None

    with pytest.raises(refs.RefError, match="not a module-level object"):
        refs.describe_kernel(kernel)


def test_the_inventory_finds_kernels_at_any_depth_but_not_device_functions():
    source = """
from numba import cuda
@cuda.jit
def top(a): pass
@cuda.jit("void(float32[:])", fastmath=False)
def with_signature(a): pass
@cuda.jit(device=True)
def helper(a): pass
def factory(op):
    @cuda.jit
    def made(a): pass
    return made
class Holder:
    @numba.cuda.jit(device=False)
    def method(a): pass
"""
    found = inventory._decorated_kernels(ast.parse(source))
    assert set(found) == {"top", "with_signature", "factory.<locals>.made", "Holder.method"}
    defined = inventory.defined_kernels()
    assert ("minidense.backend.cuda.elementwise", "_make_map.<locals>.map_kernel") in defined
    assert all(m.startswith("minidense.") for m, _ in defined)


@needs_simulator
def test_recording_keeps_each_kernel_and_argument_types_once_with_the_gpu_block():
    config = gpu.launch(1000)
    assert tuple(config) == (2, 4) and config.gpu_threads == 128  # the simulator's, the GPU's
    with record.recording() as launches:
        for dtype in (np.float32, np.float32, np.float64):
            gpu.zeros((2, 3), dtype)
        refused.calls_a_python_function[1, 1](np.zeros(1, np.float32))  # not minidense's: skipped
    got = [(refs.kernel_name(r["kernel"]), [refs.show_type(a) for a in r["args"]], r["gpu_threads"])
           for r in launches]  # fmt: skip
    assert got == [("gpu.layout:fill_kernel", ["f32[1d]", "float32"], 128),
                   ("gpu.layout:fill_kernel", ["f64[1d]", "float64"], 128)]  # fmt: skip


def test_the_result_cache_keeps_package_results_but_not_failures(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    ours = {"kernel": {"module": "minidense.kernels.pool", "qualname": "k", "line": 1,
                       "closure": []}, "args": [{"scalar": "int64"}], "gpu_threads": 128}  # fmt: skip
    theirs = dict(ours, kernel=dict(ours["kernel"], module="tests.cuda_kernels_refused"))
    first = cache.ResultCache("no-ptxas-here")
    first.put(ours, {"registers": 1})
    first.put(dict(ours, args=[]), {"error": "refused"})
    first.put(theirs, {"registers": 2})  # not the package's: its source is not in the key
    first.workload = [ours]
    first.save()
    again = cache.ResultCache("no-ptxas-here")
    assert again.path == first.path and again.get(ours) == {"registers": 1}
    assert again.get(dict(ours, args=[])) is None and again.get(theirs) is None
    assert again.workload == [ours]
    assert cache.ResultCache("no-ptxas-here", enabled=False).get(ours) is None
