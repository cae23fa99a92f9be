"""Compile a kernel for real GPUs without one: Numba → NVVM → PTX per compute capability, then
``ptxas`` → machine code per architecture, whose ``-v`` report gives registers, spills and shared
memory.

Needs the CUDA 12 compiler pieces (``pip install -e ".[cuda]"``: libnvvm, libnvrtc and ptxas from
NVIDIA's wheels) but no GPU and no driver, and the CUDA simulator off: under the simulator
``numba.cuda`` is a Python emulation that compiles nothing.
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import types

import numba
from numba import cuda
from numba.cuda import dispatcher

try:
    from cuda.pathfinder import find_nvidia_binary_utility
except ImportError:  # an older cuda-pathfinder: ptxas is then looked up on PATH only
    find_nvidia_binary_utility = None

__all__ = [
    "ToolchainMissing", "find_ptxas", "compile_ptx", "assemble", "count_f64", "first_error_line",
    "CCS",
]  # fmt: skip

CCS = ((7, 0), (8, 0), (9, 0))  # Volta (the oldest CUDA 12 supports well), Ampere, Hopper

INSTALL_HINT = (
    'install the CUDA 12 compilers with: python3 -m pip install -e ".[cuda]" '
    "(about 430 MB on disk; no GPU or driver needed)"
)


class ToolchainMissing(Exception):
    """NVVM or ptxas cannot be found; the message says what to install."""


def find_ptxas():
    """Path of ``ptxas`` (NVIDIA's wheel first, then a CUDA install or PATH), after compiling and
    assembling a one-line kernel for the oldest target: a CUDA 13 toolkit found instead of the
    CUDA 12 wheels cannot, and says so here rather than in every row of the table."""
    if numba.config.ENABLE_CUDASIM:
        raise ToolchainMissing(
            "the CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): it compiles nothing; unset it"
        )
    found = find_nvidia_binary_utility and find_nvidia_binary_utility("ptxas")
    ptxas = found or shutil.which("ptxas")
    if not ptxas:
        raise ToolchainMissing(f"ptxas not found; {INSTALL_HINT}")
    try:
        ptx = compile_ptx(_probe, (numba.types.float32[::1],), CCS[0])
    except Exception as e:  # noqa: BLE001 - any failure here means a missing or broken toolchain
        first = first_error_line(str(e)) if str(e).strip() else type(e).__name__
        raise ToolchainMissing(
            f"NVVM cannot compile a one-line kernel ({first}); {INSTALL_HINT}"
        ) from None
    target = f"sm_{CCS[0][0]}{CCS[0][1]}"
    if f".target {target}" not in ptx:
        raise ToolchainMissing(f"this NVVM cannot compile for {target}; {INSTALL_HINT}")
    probe = assemble(ptxas, ptx, CCS[0])
    if "error" in probe:
        raise ToolchainMissing(f"{ptxas} cannot assemble for {target} ({probe['error']}); "
                               f"{INSTALL_HINT}")  # fmt: skip
    return ptxas


def _probe(a):
    a[0] = 1


@contextlib.contextmanager
def _answering_compute_capability(cc):
    """Answer "what is the current device's compute capability?" with ``cc`` while compiling.

    A kernel that calls a ``cuda.jit(device=True)`` function compiles it through its dispatcher,
    and numba-cuda's ``CUDADispatcher.compile_device`` asks the driver for the current device's
    compute capability (``get_current_device()``). Here there is no device and often no driver,
    which raises ``CudaSupportError``; the target being compiled for is the honest answer. The
    device function's compiled IR is then cached by signature, and it is target-independent NVVM
    IR: compiling for the oldest architecture first keeps every intrinsic valid for the newer ones.
    """
    real = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = real


def compile_ptx(fn, argtypes, cc):
    """PTX of the kernel ``fn`` for argument types ``argtypes`` and compute capability ``cc``."""
    with _answering_compute_capability(cc):
        ptx, _ = cuda.compile_ptx(fn, numba.types.void(*argtypes), cc=cc)
    return ptx


_USED = re.compile(r"Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def assemble(ptxas, ptx, cc):
    """Assemble ``ptx`` for ``sm_XY`` with ``ptxas -v``: ``{"registers", "spill", "smem",
    "stack"}`` in registers per thread and bytes, or ``{"error": first line of ptxas' output}``."""
    arch = f"sm_{cc[0]}{cc[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        run = subprocess.run(
            [ptxas, f"-arch={arch}", "-v", "-o", os.path.join(tmp, "kernel.cubin"), path],
            capture_output=True,
            text=True,
        )
    if run.returncode != 0:
        return {"error": f"ptxas {arch}: {first_error_line(run.stderr + run.stdout)}"}
    used, spill = _USED.search(run.stderr), _SPILL.search(run.stderr)
    if used is None or spill is None:
        return {"error": f"ptxas {arch}: unexpected -v report: {run.stderr.strip()[:200]}"}
    return {
        "registers": int(used.group(1)),
        "smem": int(used.group(2) or 0),
        "stack": int(spill.group(1)),
        "spill": int(spill.group(2)) + int(spill.group(3)),
    }


def first_error_line(message):
    """The first informative line of a compiler's message: Numba's "Failed in cuda mode pipeline"
    header skipped, mangled kernel names shortened."""
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith("Failed in "):
            return re.sub(r"_Z\w+", "<kernel>", line)
    return "(no message)"


# A PTX instruction line: optional predicate, then the opcode with its type suffixes.
_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)", re.MULTILINE)
_MOVES = ("ld.", "st.", "mov.", "ldu.", "cvta.")  # data movement, not float64 arithmetic


def count_f64(ptx):
    """Float64 instructions in ``ptx``: arithmetic, comparisons and conversions with a ``.f64``
    operand (loads, stores and moves of float64 data are not counted)."""
    count = 0
    for opcode in _INSTRUCTION.findall(ptx):
        if ".f64" in opcode and not opcode.startswith(_MOVES):
            count += 1
    return count
