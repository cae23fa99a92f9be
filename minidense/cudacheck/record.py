"""Record the CUDA kernel launches of a process that runs under Numba's CUDA simulator.

``with recording() as launches:`` patches the simulator's kernel object so that every launch of a
kernel defined in minidense adds ``{"kernel": ref, "args": [types], "gpu_threads": n}`` to
``launches`` (once per distinct kernel and argument types; see refs.py for the plain-data form).
``gpu_threads`` is the block size the same launch has on a GPU, when the launch configuration says
so (``minidense.gpu.Launch``): the simulator runs smaller blocks.

A launch that cannot be named (a kernel with a closure over a local object, an argument of an
unexpected type) is recorded with an ``"error"`` instead of types, so the compile check counts it
as not compiled rather than missing it.
"""

import contextlib
import json

import numba
from numba.core.typing.typeof import Purpose
from numba.cuda.simulator import kernel as sim
from numba.cuda.simulator.args import ArgHint

from . import refs

__all__ = ["recording", "save", "load", "Launches"]

_ACTIVE = []  # the Launches objects currently recording


class Launches:
    """Distinct launches: ``(kernel, argument types) -> record``, in first-launch order."""

    def __init__(self, records=()):
        self._by_key = {}
        for r in records:
            self.add(r)

    def add(self, record):
        key = json.dumps(
            [record["kernel"], record.get("args"), record.get("error")], sort_keys=True
        )
        old = self._by_key.get(key)
        if old is None:
            self._by_key[key] = dict(record)
        elif old.get("gpu_threads") is None:
            old["gpu_threads"] = record.get("gpu_threads")

    def update(self, other):
        for r in other:
            self.add(r)

    def __iter__(self):
        return iter(list(self._by_key.values()))

    def __len__(self):
        return len(self._by_key)


def _arg_type(arg):
    if isinstance(arg, ArgHint):
        arg = arg.to_device([])  # an ArgHint (a CudaArray): the array the kernel really gets
    return numba.typeof(arg, Purpose.argument)


def _record(kernel, args):
    fn = kernel.fn
    if not fn.__module__.startswith(refs.PACKAGE + "."):
        return  # a kernel defined in a test or a notebook is not ours to compile
    try:
        ref = refs.describe_kernel(fn)
    except refs.RefError as e:
        ref, error = {"module": fn.__module__, "qualname": fn.__qualname__,
                      "line": fn.__code__.co_firstlineno, "closure": []}, str(e)  # fmt: skip
    else:
        error = None
    record = {"kernel": ref, "gpu_threads": getattr(kernel, "_minidense_gpu_threads", None)}
    if error is None:
        try:
            record["args"] = [refs.type_to_json(_arg_type(a)) for a in args]
        except (refs.RefError, ValueError) as e:
            error = str(e)
    if error is not None:
        record["error"] = error
    for launches in _ACTIVE:
        launches.add(record)


def _install():
    """Wrap the simulator kernel's ``__getitem__`` (the launch configuration) and ``__call__``."""
    cls = sim.FakeCUDAKernel
    if getattr(cls, "_minidense_recording", False):
        return
    configure, call = cls.__getitem__, cls.__call__

    def __getitem__(self, configuration):
        self._minidense_gpu_threads = getattr(configuration, "gpu_threads", None)
        return configure(self, configuration)

    def __call__(self, *args):
        # A device function, or a kernel called from inside a simulated kernel, is no launch.
        if _ACTIVE and not self._device and sim._get_kernel_context() is None:
            _record(self, args)
        return call(self, *args)

    cls.__getitem__, cls.__call__ = __getitem__, __call__
    cls._minidense_recording = True


@contextlib.contextmanager
def recording(launches=None):
    """Record launches into ``launches`` (a new :class:`Launches` by default) while active."""
    if not numba.config.ENABLE_CUDASIM:
        raise RuntimeError(
            "launches are recorded under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)"
        )
    _install()
    launches = Launches() if launches is None else launches
    _ACTIVE.append(launches)
    try:
        yield launches
    finally:
        _ACTIVE.remove(launches)


def save(launches, path):
    with open(path, "w") as f:
        json.dump(list(launches), f, indent=1)


def load(path):
    with open(path) as f:
        return Launches(json.load(f))
