"""The package's import graph, read from the source (every ``import`` statement of every module,
at module level and inside functions): no import circle anywhere, and every import goes down the
layers of docs/architecture.md, never up. A new import that breaks either fails here, naming it."""

import ast
import re
from pathlib import Path

import pytest

from minidense import backend

PACKAGE = Path(__file__).resolve().parents[1] / "minidense"

# Each module's layer, by the longest matching prefix of its dotted name.
LAYERS = {
    "minidense._env": "env",
    "minidense.gpu": "gpu",
    "minidense.kernels": "kernels",
    "minidense.backend": "backend",
    "minidense.views": "core", "minidense.autograd": "core", "minidense.inplace": "core",
    "minidense.tensor": "core", "minidense.creation": "core", "minidense.checks": "core",
    "minidense.ops": "ops",
    "minidense.functional": "api", "minidense.gradcheck": "api", "minidense.optim": "api",
    "minidense.nn": "nn",
    "minidense.models": "models",
    "minidense.data": "data", "minidense.metrics": "metrics",
    "minidense.viz": "viz",
    "minidense.checkpoint": "apps", "minidense.experiments": "apps", "minidense.course": "apps",
    "minidense.cudacheck": "apps", "minidense.__main__": "apps", "minidense": "apps",
}  # fmt: skip

# What each layer may import besides itself (docs/architecture.md, "Layers").
ALLOWED = {
    "env": set(),
    "gpu": set(),
    "kernels": {"gpu"},
    "backend": {"gpu"},
    "core": {"backend"},
    "ops": {"core", "backend", "kernels"},
    "api": {"ops", "core", "backend"},
    "nn": {"api", "core", "backend"},
    "models": {"nn", "api", "core"},
    "data": set(),
    "metrics": set(),
    "viz": {"kernels", "core", "metrics", "data"},
    "apps": {"env", "gpu", "kernels", "backend", "core", "ops", "api", "nn", "models", "data",
             "metrics", "viz"},
}  # fmt: skip


def layer(module):
    while module not in LAYERS:
        module = module.rsplit(".", 1)[0]
    return LAYERS[module]


def modules():
    """{dotted name: path} of every module in the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["minidense", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name, path, known):
    """``(imported module, line)`` of every import of a package module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            # ``from pkg import module`` imports the module; ``from module import name`` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "minidense":
                continue
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                found.append((target, node.lineno))
    return found


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_import_graph_reads_every_module_and_finds_their_imports():
    g = graph()
    assert len(g) > 100
    targets = {name: {t for t, _ in found} for name, found in g.items()}
    # relative module-level imports, of a module and of a name from a module
    assert {"minidense.gpu", "minidense.kernels.roi"} <= targets["minidense.kernels.roi_align"]
    # imports inside a function (the command line loads its commands lazily)
    assert "minidense.cudacheck.check" in targets["minidense.__main__"]


def test_there_is_no_import_circle():
    g = {name: {t for t, _ in found} for name, found in graph().items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert circles == [], f"modules that import each other, directly or around a circle: {circles}"


def test_every_import_goes_down_the_layers():
    upward = [
        f"{name} ({layer(name)}) imports {target} ({layer(target)}) at line {line}"
        for name, found in graph().items()
        for target, line in found
        if layer(target) != layer(name) and layer(target) not in ALLOWED[layer(name)]
    ]
    assert upward == [], "imports against the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    "name, forbidden",
    [
        ("minidense.kernels", {"core", "ops", "backend", "api", "nn", "models"}),  # no Tensor
        ("minidense.models", {"kernels", "gpu", "ops"}),  # through nn and functional only
        ("minidense.gpu", {"kernels", "backend", "core", "ops"}),
    ],
)
def test_the_rules_the_docs_state_hold(name, forbidden):
    """Spelled out (the table above implies them): kernels never import tensor.py, models never
    import kernels, the GPU layer imports neither the backend nor the kernels above it."""
    g = graph()
    for module, found in g.items():
        if module == name or module.startswith(name + "."):
            bad = [t for t, _ in found if layer(t) in forbidden]
            assert bad == [], f"{module} imports {bad}"


def test_generic_math_calls_only_the_backend_primitives():
    """The backend contract's function half: above backend/, code asks ``array_module`` for a
    module and calls only the names in ``backend.PRIMITIVES`` on it (the array methods are the
    other half, installed on CudaArray from one table)."""
    call = re.compile(r"\bxp\.(\w+)|array_module\([^()]*\)\.(\w+)")
    seen, outside = set(), []
    for name, path in modules().items():
        if layer(name) not in {"core", "ops", "api", "nn", "models"}:
            continue
        for m in call.finditer(path.read_text(encoding="utf-8")):
            fn = m.group(1) or m.group(2)
            seen.add(fn)
            if fn not in backend.PRIMITIVES:
                outside.append(f"{name}: xp.{fn}")
    assert {"exp", "where", "matmul", "add_at"} <= seen  # the scan finds the calls
    assert outside == [], "array functions that are not backend.PRIMITIVES:\n" + "\n".join(outside)
