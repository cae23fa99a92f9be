"""check-cuda's results kept between runs, beside Numba's own kernel cache.

Recording and compiling take a minute or two, and their results depend only on the package's
source, the compilers and the launch: a rerun with none of them changed (tests edited, say)
reuses them. The key hashes every ``.py`` file of the package and the versions of Numba,
numba-cuda, llvmlite and ptxas, so any edit to the package starts afresh. One file is kept, in
``minidense/__pycache__`` (``NUMBA_CACHE_DIR`` when set); nothing is cached where it cannot be
written.
"""

import hashlib
import importlib.metadata
import json
import os
import subprocess
import tempfile
from pathlib import Path

import minidense

__all__ = ["ResultCache"]

_PREFIX = "check-cuda-"


def _fingerprint(ptxas):
    h = hashlib.sha256()
    for dist in ("numba", "numba-cuda", "llvmlite", "numpy"):
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)};".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist}=none;".encode())
    try:
        version = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = "no ptxas"
    h.update(version.encode())
    root = Path(minidense.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _directory():
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return Path(minidense.__file__).parent / "__pycache__"


class ResultCache:
    """``get``/``put`` a launch's result row, and the workload's launches, under one key."""

    def __init__(self, ptxas, enabled=True):
        self.enabled = enabled
        self.path = _directory() / f"{_PREFIX}{_fingerprint(ptxas)}.json" if enabled else None
        self.data = {"rows": {}, "workload": None}
        if enabled and self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                pass  # unreadable: start afresh

    @staticmethod
    def _key(launch):
        return json.dumps([launch["kernel"], launch.get("args"), launch.get("error"),
                           launch.get("gpu_threads")], sort_keys=True)  # fmt: skip

    def get(self, launch):
        return self.data["rows"].get(self._key(launch))

    def put(self, launch, row):
        # Only the package's kernels (the key covers their source), and no failure: its message
        # is always fresh.
        if launch["kernel"]["module"].startswith("minidense.") and "error" not in row:
            self.data["rows"][self._key(launch)] = row

    @property
    def workload(self):
        return self.data["workload"]

    @workload.setter
    def workload(self, launches):
        self.data["workload"] = launches

    def save(self):
        """Write the file atomically and remove older ones; quietly nothing where not writable."""
        if not self.enabled:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False) as f:
                json.dump(self.data, f)
            os.replace(f.name, self.path)
            for old in self.path.parent.glob(f"{_PREFIX}*.json"):
                if old != self.path:
                    old.unlink()
        except OSError:
            pass
