"""The course notebooks as editions: ``python -m minidense notebooks --student DIR | --instructor DIR``.

The notebooks in the repository's ``notebooks/`` are the instructor's: every exercise is marked in
nbgrader's format, an *answer* cell whose solution stands between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, followed by a graded *check* cell (nbgrader metadata ``grade: true`` with
its points). From them:

- the **student edition** replaces each solution region with ``raise NotImplementedError()``
  (and any ``### BEGIN HIDDEN TESTS`` region with nothing), clears the outputs and keeps the
  checks, so a student reads no answer and every check fails until it is answered (the rules of
  nbgrader's ClearSolutions and ClearHiddenTests, so both tools give the same notebooks);
- the **instructor edition** is an nbgrader course folder: ``source/<name>/<name>.ipynb`` for each
  notebook, with solutions, and an ``nbgrader_config.py``, ready for
  ``nbgrader generate_assignment`` and ``nbgrader autograde``.

Nothing is overwritten unless asked (``force``): a student's answered notebook is never lost.
"""

import re
from os import PathLike
from pathlib import Path

import nbformat

# The repository's notebooks; a plain (non-editable) install has none, and says so.
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
_REGIONS = {"solution": ("BEGIN SOLUTION", "END SOLUTION"),
            "hidden": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")}  # fmt: skip
NBGRADER_CONFIG = """\
# nbgrader's configuration for the minidense course (written by `python -m minidense notebooks
# --instructor`). Run nbgrader in this folder: see the README's "Teaching with the notebooks".
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "minidense"
c.CourseDirectory.root = "."
# The notebooks train small models in full mode; give a cell time to finish.
c.ExecutePreprocessor.timeout = 1200
"""


def grading(cell):
    """The cell's nbgrader metadata ({} for an ordinary cell)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell):
    return bool(grading(cell).get("solution"))


def is_check(cell):
    return bool(grading(cell).get("grade")) and cell.cell_type == "code"


def _replace_region(source, begin, end, stub):
    """``source`` with every line range from a ``begin`` line to an ``end`` line replaced by
    ``stub`` (indented like the ``begin`` line); (new source, how many regions)."""
    out, inside, count = [], False, 0
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r} regions in a cell:\n{source}")
            inside, count = True, count + 1
            indent = re.match(r"\s*", line).group(0)
            out += [indent + s for s in stub.split("\n")] if stub else []
        elif end in line:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r} in a cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r} in a cell:\n{source}")
    return "\n".join(out), count


def student_notebook(nb):
    """A copy of notebook ``nb`` with solutions and hidden tests removed and outputs cleared."""
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # a deep copy
    for cell in nb.cells:
        begin, end = _REGIONS["solution"]
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        cell.source, n = _replace_region(cell.source, begin, end, stub)
        if n and not is_answer(cell):
            raise ValueError(
                "a solution region stands in a cell that is not marked as an answer cell "
                f"(nbgrader metadata 'solution': true):\n{cell.source}"
            )
        if is_answer(cell) and not n:  # a whole-cell answer, as nbgrader treats it
            cell.source = stub
        if is_check(cell):
            cell.source, _ = _replace_region(cell.source, *_REGIONS["hidden"], "")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def course_notebooks(source=None):
    """The ``.ipynb`` files of ``source`` (default: the repository's notebooks), sorted."""
    source = Path(NOTEBOOK_DIR if source is None else source)
    if not source.is_dir():
        raise FileNotFoundError(
            f"--source: no notebook folder at {str(source)!r} (the notebooks ship with the "
            "repository, not with a plain pip install: run this from a clone, or give --source)"
        )
    paths = sorted(source.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"--source: {str(source)!r} holds no .ipynb notebooks")
    return paths


def _read(path):
    """One notebook, or a ValueError naming its file (not JSON, or JSON that is no notebook)."""
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, KeyError, AttributeError, nbformat.ValidationError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"--source: {str(path)!r} is not a Jupyter notebook ({first})") from None


def _targets(dest, paths, layout):
    if not isinstance(dest, str | PathLike) or not str(dest).strip():
        raise ValueError(f"the output folder must be a folder's path, got {dest!r}")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"the output folder {str(dest)!r} is a file, not a folder")
    return [dest / layout(p) for p in paths]


def _refuse_overwrite(targets, force):
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ValueError(
            f"{existing[0]} exists{more}: choose another folder, or pass --force to overwrite "
            "(a student's answers there would be lost)"
        )


def write_student_edition(dest, source=None, force=False):
    """Write the student edition of every notebook into ``dest``; returns the paths written."""
    paths = course_notebooks(source)
    targets = _targets(dest, paths, lambda p: p.name)
    _refuse_overwrite(targets, force)
    notebooks = [_read(p) for p in paths]  # all read first: a bad one leaves nothing half-written
    for nb, target in zip(notebooks, targets, strict=True):
        nb = student_notebook(nb)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    return targets


def write_instructor_edition(dest, source=None, force=False):
    """Write an nbgrader course folder into ``dest``: ``source/<name>/<name>.ipynb`` with the
    solutions, and ``nbgrader_config.py``; returns the notebook paths written."""
    paths = course_notebooks(source)
    targets = _targets(dest, paths, lambda p: Path("source") / p.stem / p.name)
    config = Path(dest) / "nbgrader_config.py"
    _refuse_overwrite(targets + [config], force)
    notebooks = [_read(p) for p in paths]
    for nb, target in zip(notebooks, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        for cell in nb.cells:  # stored clean already; cleared again in case a run left outputs
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, target)
    config.write_text(NBGRADER_CONFIG)
    return targets


def exercises(nb):
    """``[(answer cell, check cell), ...]``: each answer cell with the graded check after it."""
    pairs, answer = [], None
    for cell in nb.cells:
        if is_answer(cell):
            answer = cell
        elif is_check(cell) and answer is not None:
            pairs.append((answer, cell))
            answer = None
    return pairs


__all__ = [
    "NOTEBOOK_DIR",
    "course_notebooks",
    "exercises",
    "student_notebook",
    "write_instructor_edition",
    "write_student_edition",
]
