"""The course notebooks are stored clean and teach with the library instead of redefining it.

CI executes the notebooks themselves with nbmake (``pytest --nbmake notebooks``); these checks
need no kernel: they read the ``.ipynb`` JSON and parse the code cells.
"""

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import minidense
import minidense.ops

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
COURSE = [
    "01_autograd_and_gradcheck",
    "02_convolution_and_receptive_fields",
    "03_upsampling",
    "04_unet_segmentation",
    "05_roipool_vs_roialign",
    "06_mask_rcnn",
    "07_one_kernel_two_targets",
    "08_keypoints_and_panoptic",
]


def _public_names(module):
    """Names a user could redefine by mistake: ``__all__``, else the public functions and classes
    defined in the module itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }


def library_names():
    """Public names of the package root, functional, nn, models and every ops module."""
    modules = [
        minidense,
        minidense.functional,
        minidense.nn,
        importlib.import_module("minidense.models"),
    ]
    modules += [
        importlib.import_module(f"minidense.ops.{info.name}")
        for info in pkgutil.iter_modules(minidense.ops.__path__)
    ]
    names = set()
    for m in modules:
        names |= _public_names(m)
    return names


def _cells(nb, kind):
    return [c for c in nb["cells"] if c["cell_type"] == kind]


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _parse(source):
    # IPython magics and shell escapes are not Python: blank them out before parsing.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def redefinitions(source, forbidden):
    """Names of functions or classes that ``source`` defines although the library provides them."""
    return sorted(
        node.name
        for node in ast.walk(_parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name in forbidden
    )


def imported_packages(source):
    """Top-level packages that ``source`` imports, e.g. {"numpy", "minidense"}."""
    found = set()
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add((node.module or "").split(".")[0])
    return found


def imports_minidense(source):
    return "minidense" in imported_packages(source)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_the_course_is_complete():
    assert [p.stem for p in NOTEBOOKS] == COURSE


def test_readme_states_each_notebooks_full_mode_time_and_headline():
    """The README's course table has a row per notebook: its link, its full-mode time and what
    it ends with (a number a student can compare with)."""
    readme = (NOTEBOOK_DIR.parent / "README.md").read_text(encoding="utf-8")
    for stem in COURSE:
        rows = [line for line in readme.splitlines() if f"notebooks/{stem}.ipynb)" in line]
        assert len(rows) == 1, f"README: one course-table row for {stem}, found {len(rows)}"
        cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
        assert len(cells) == 3, f"README's row for {stem}: notebook | time | headline, got {cells}"
        assert re.fullmatch(r"(about )?\d+(\.\d+)? (s|min)( \d+ s)?", cells[1]), (stem, cells[1])
        assert re.search(r"\d", cells[2]), f"README's row for {stem} names no number: {cells[2]}"


def test_checker_catches_redefinitions():
    forbidden = library_names()
    assert {"Tensor", "conv2d", "roi_align", "gradcheck", "UNet", "Conv2d"} <= forbidden
    src = "class Tensor:\n    pass\n\ndef conv2d(x, w):\n    return x\n\ndef helper():\n    pass\n"
    assert redefinitions(src, forbidden) == ["Tensor", "conv2d"]
    assert redefinitions("class Softplus(md.Function):\n    pass\n", forbidden) == []
    assert imports_minidense("import minidense.functional as F")
    assert imports_minidense("from minidense.models import UNet")
    assert not imports_minidense("import numpy as np")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = load(path)
    assert nb["nbformat"] == 4
    for i, cell in enumerate(_cells(nb, "code")):
        assert cell.get("outputs") == [], f"{path.name}: code cell {i} has stored outputs"
        assert cell.get("execution_count") is None, (
            f"{path.name}: code cell {i} has an execution count"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernel_is_python3(path):
    spec = load(path)["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3"
    assert spec.get("language") == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_imports_the_library_and_redefines_none_of_it(path):
    nb = load(path)
    sources = [_source(c) for c in _cells(nb, "code")]
    assert any(imports_minidense(s) for s in sources), f"{path.name} never imports minidense"
    forbidden = library_names()
    for i, s in enumerate(sources):
        assert redefinitions(s, forbidden) == [], (
            f"{path.name}: code cell {i} redefines library names; import them from minidense"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_graded_answer_and_check_pairs(path):
    """3-4 exercises, each an answer cell (its solution between nbgrader's BEGIN/END SOLUTION
    markers) and then a graded, locked check cell whose asserts test a name the answer defines."""
    nb = load(path)
    cells = _cells(nb, "code")
    answers = [c for c in cells if c["metadata"].get("nbgrader", {}).get("solution")]
    checks = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
    assert 3 <= len(answers) == len(checks) <= 4, f"{path.name}: {len(answers)} exercises"
    ids = [
        c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]
    ]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate nbgrader grade_ids"
    for answer in answers:
        check = cells[cells.index(answer) + 1]
        assert check in checks, f"{path.name}: an answer cell is not followed by its check cell"
        meta = check["metadata"]["nbgrader"]
        assert meta["points"] > 0 and meta["locked"] and not meta["solution"]
        src = _source(answer)
        assert "### BEGIN SOLUTION" in src and "### END SOLUTION" in src
        assert "# solution" not in src.lower().replace("### begin solution", "")
        solution = src.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        defined = {n.id for n in ast.walk(_parse(solution)) if isinstance(n, ast.Name)} | {
            n.name
            for n in ast.walk(_parse(solution))
            if isinstance(n, ast.FunctionDef | ast.ClassDef)
        }
        tree = _parse(_source(check))
        assert any(isinstance(n, ast.Assert) for n in ast.walk(tree)), f"{path.name}: no assert"
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert used & defined, f"{path.name}: a check cell uses nothing its answer defines"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_starts_with_a_title_and_has_no_empty_cells(path):
    nb = load(path)
    titles = [_source(c) for c in _cells(nb, "markdown") if _source(c).startswith("# ")]
    assert titles, f"{path.name} has no '# ' title cell"
    assert all(_source(c).strip() for c in nb["cells"]), f"{path.name} has an empty cell"


def test_simulator_is_switched_on_before_numba_is_imported():
    """Numba reads NUMBA_ENABLE_CUDASIM at import: notebook 7 must set it in its first cell."""
    nb = load(NOTEBOOK_DIR / "07_one_kernel_two_targets.ipynb")
    first = _source(_cells(nb, "code")[0])
    assert "NUMBA_ENABLE_CUDASIM" in first and "setdefault" in first
    assert not imported_packages(first) & {"numba", "minidense"}
