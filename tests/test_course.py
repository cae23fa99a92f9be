"""The course's two editions, and notebooks whose numbers are computed, not written in.

- The student edition removes every solution, keeps every check, and every check fails when the
  notebook is run unanswered (each student notebook is executed here, in fast mode).
- It is what nbgrader's own ClearSolutions/ClearHiddenTests give, and nbgrader's tools accept the
  instructor edition: ``generate_assignment`` and ``autograde`` grade an unanswered submission 0
  and a solved one full marks.
- The U-Net and Mask R-CNN notebooks print what the library computed: the executed copy shifts
  every metric the library returns by a known amount, and the printed numbers must move with it.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minidense import course
from minidense.__main__ import main

NOTEBOOKS = course.course_notebooks()
HAVE_NBGRADER = importlib.util.find_spec("nbgrader") is not None
NO_NBGRADER = "nbgrader is not installed (pip install -e '.[course]')"


def _solution_lines(cell):
    """The lines of an answer cell's solution region that say something (no comments)."""
    region = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    return [
        s.strip()
        for s in region.splitlines()
        if len(s.strip()) > 12 and not s.strip().startswith("#")
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_removes_every_solution_and_keeps_every_check(path):
    source = nbformat.read(path, as_version=4)
    student = course.student_notebook(source)
    text = nbformat.writes(student)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    # A solution line may stand elsewhere in the lesson too (say, ``@staticmethod``): only lines
    # found nowhere else would give an answer away.
    elsewhere = "\n".join(c.source for c in source.cells if not course.is_answer(c))
    pairs_in, pairs_out = course.exercises(source), course.exercises(student)
    assert len(pairs_in) == len(pairs_out) >= 3
    for (answer, check), (stub, kept) in zip(pairs_in, pairs_out, strict=True):
        assert kept.source == check.source and kept.metadata == check.metadata
        assert stub.source.endswith(course.CODE_STUB)
        for line in _solution_lines(answer):
            assert line in elsewhere or line not in text, (
                f"{path.name}: the student edition still holds {line!r}"
            )
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    assert source.cells[0].source == student.cells[0].source  # everything else is kept


@pytest.mark.skipif(not HAVE_NBGRADER, reason=NO_NBGRADER)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_is_what_nbgrader_writes(path):
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = nbformat.read(path, as_version=4)
    theirs, resources = ClearSolutions().preprocess(nbformat.reads(nbformat.writes(nb), 4), {})
    theirs, _ = ClearHiddenTests().preprocess(theirs, resources)
    ours = course.student_notebook(nb)
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]


def test_solution_markers_must_pair_and_stand_in_answer_cells():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2")]
    nb.cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a"}
    with pytest.raises(ValueError, match="without 'END SOLUTION'"):
        course.student_notebook(nb)
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\ny = 2\n### END SOLUTION")]
    with pytest.raises(ValueError, match="not marked as an answer cell"):
        course.student_notebook(nb)
    nb.cells[0].metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a"}
    assert course.student_notebook(nb).cells[0].source == course.CODE_STUB


def test_cli_writes_both_editions_and_never_overwrites_unasked(tmp_path, capsys):
    student, instructor = tmp_path / "student", tmp_path / "instructor"
    assert main(["notebooks", "--student", str(student)]) == 0
    assert sorted(p.name for p in student.iterdir()) == [p.name for p in NOTEBOOKS]
    assert main(["notebooks", "--instructor", str(instructor)]) == 0
    for p in NOTEBOOKS:
        copied = nbformat.read(instructor / "source" / p.stem / p.name, as_version=4)
        assert [c.source for c in copied.cells] == [
            c.source for c in nbformat.read(p, as_version=4).cells
        ]
    assert "course_id" in (instructor / "nbgrader_config.py").read_text()

    answered = student / NOTEBOOKS[0].name
    answered.write_text(answered.read_text().replace("NotImplementedError", "my answer"))
    capsys.readouterr()
    assert main(["notebooks", "--student", str(student)]) == 2  # a student's work is kept
    assert "--force" in capsys.readouterr().err and "my answer" in answered.read_text()
    assert main(["notebooks", "--student", str(student), "--force"]) == 0
    assert "my answer" not in answered.read_text()

    assert (
        main(["notebooks", "--student", str(tmp_path / "x"), "--source", str(tmp_path / "none")])
        == 2
    )
    assert "no notebook folder" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert main(["notebooks", "--student", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one edition at a time
        main(["notebooks", "--student", "a", "--instructor", "b"])


@pytest.mark.parametrize("text", ["garbage", '{"nbformat": 4}', "[1, 2]"])
@pytest.mark.parametrize("edition", ["--student", "--instructor"])
def test_a_file_that_is_no_notebook_is_named_and_nothing_is_written(edition, text, tmp_path,
                                                                    capsys):  # fmt: skip
    """Not JSON, or JSON that is no notebook: one line naming the file (not nbformat's traceback
    or a message without the file), before any notebook is written."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(NOTEBOOKS[0], source)
    (source / "99_broken.ipynb").write_text(text)
    out = tmp_path / "out"
    assert main(["notebooks", edition, str(out), "--source", str(source)]) == 2
    err = capsys.readouterr().err
    assert "99_broken.ipynb' is not a Jupyter notebook" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_empty_output_folder_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # an empty path must not mean the current folder either
    for edition in ("--student", "--instructor"):
        assert main(["notebooks", edition, ""]) == 2
        assert "the output folder must be a folder's path, got ''" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# The student edition, executed unanswered (fast mode, as conftest.py sets for the kernels)
# --------------------------------------------------------------------------------------------
SHIFT = 0.0375  # added to every metric the library computes, in the executed copies below

# Cells run before the notebook's own (so its imports already see them): every evaluation the
# training functions return, and the shipped ablation records, move by SHIFT.
SHIFT_CELLS = {
    "04_unet_segmentation": f"""
import minidense.experiments.segmentation as _seg
_real_evaluate = _seg.evaluate
_seg.evaluate = lambda *a, **k: (lambda r: (r[0] + {SHIFT}, *r[1:]))(_real_evaluate(*a, **k))
""",
    "06_mask_rcnn": f"""
import minidense.experiments.ablation as _abl
import minidense.experiments.maskrcnn as _mrc
_real_evaluate, _real_load = _mrc.evaluate_maskrcnn, _abl.load_record
def _shift(stats):
    return {{k: (v + {SHIFT} if v >= 0 else v) for k, v in stats.items()}}
def _evaluate(*a, **k):
    results, shown = _real_evaluate(*a, **k)
    return {{kind: _shift(s) for kind, s in results.items()}}, shown
def _load(name):
    record = _real_load(name)
    for run in record["runs"]:
        run["segm"], run["bbox"] = _shift(run["segm"]), _shift(run["bbox"])
    return record
_mrc.evaluate_maskrcnn, _abl.load_record = _evaluate, _load
""",
}
# Cells run after the notebook: what the library computes, unshifted, for the same runs.
AUDIT_CELLS = {
    "04_unet_segmentation": """
import json
_miou = _real_evaluate(result["model"], ShapesSemantic(N_TEST, image_size=SIZE, seed=10_000, **SHAPES))[0]
print("AUDIT", json.dumps({"mIoU": _miou}))
""",
    "06_mask_rcnn": """
import json
_test = ShapesInstances(1 if FAST else preset()["n_test"], image_size=preset()["image_size"], seed=10_000)
_res = _real_evaluate(result["model"], _test)[0]
print("AUDIT", json.dumps({"segm": _res["segm"], "bbox": _res["bbox"], "table": measured_report()[0].text}))
""",
}


def _execute_student_edition(path, tmp_dir):
    from nbclient import NotebookClient

    nb = course.student_notebook(nbformat.read(path, as_version=4))
    if path.stem in SHIFT_CELLS:
        nb.cells.insert(0, nbformat.v4.new_code_cell(SHIFT_CELLS[path.stem]))
        nb.cells.append(nbformat.v4.new_code_cell(AUDIT_CELLS[path.stem]))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_dir)}})  # fmt: skip
    client.execute()
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    cache = {}

    def run(path):
        if path.stem not in cache:
            cache[path.stem] = _execute_student_edition(path, tmp_path_factory.mktemp(path.stem))
        return cache[path.stem]

    return run


def _text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_check_fails_when_unanswered(path, executed):
    nb = executed(path)
    first_answer = min(nb.cells.index(a) for a, _ in course.exercises(nb))
    for cell in nb.cells[:first_answer]:  # the lesson itself runs cleanly
        assert not _errors(cell), f"{path.name}: a lesson cell failed: {_errors(cell)}"
    for answer, check in course.exercises(nb):
        assert [e.ename for e in _errors(answer)] == ["NotImplementedError"]
        assert _errors(check), f"{path.name}: {check.metadata.nbgrader.grade_id} passed unanswered"


def _audit(nb):
    return json.loads(_text(nb.cells[-1]).split("AUDIT", 1)[1])


def test_unet_notebook_prints_the_miou_it_computed(executed):
    nb = executed(NOTEBOOKS[3])
    printed = [float(m) for c in nb.cells for m in re.findall(r"held-out mIoU (\d\.\d+)", _text(c))]
    assert printed, "the U-Net notebook printed no held-out mIoU"
    assert printed[0] == pytest.approx(_audit(nb)["mIoU"] + SHIFT, abs=5e-4)


def test_maskrcnn_notebook_prints_the_ap_and_table_it_computed(executed):
    nb = executed(NOTEBOOKS[5])
    text = "".join(_text(c) for c in nb.cells[:-1])
    audit = _audit(nb)
    found = re.search(
        r"held-out mask AP (\S+), mask AP50 (\S+); box AP (\S+), box AP50 (\S+)", text
    )
    assert found, "the Mask R-CNN notebook printed no held-out AP line"
    want = [audit["segm"]["AP"], audit["segm"]["AP50"], audit["bbox"]["AP"], audit["bbox"]["AP50"]]
    got = [float(v.rstrip(";,")) for v in found.groups()]
    assert got == pytest.approx([100 * (w + SHIFT) for w in want], abs=0.051)
    assert audit["table"] in text  # the measured table, summarised from the shipped records


def test_notebooks_read_measured_results_from_the_shipped_records():
    sources = {p.stem: nbformat.read(p, as_version=4) for p in NOTEBOOKS}
    code = lambda stem: "\n".join(c.source for c in sources[stem].cells if c.cell_type == "code")  # noqa: E731
    assert "measured_decoders()" in code("04_unet_segmentation")
    assert "summarise_decoders(runs)" in code("04_unet_segmentation")
    assert "measured_report()" in code("06_mask_rcnn")


# --------------------------------------------------------------------------------------------
# nbgrader's own tools on the instructor edition
# --------------------------------------------------------------------------------------------
def _nbgrader(course_dir, *args):
    # nbgrader runs `alembic` by name: put this interpreter's scripts first on PATH, so that the
    # test passes from a venv that is not activated (`.venv/bin/python -m pytest`).
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.skipif(not HAVE_NBGRADER, reason=NO_NBGRADER)
def test_nbgrader_generates_and_autogrades_an_assignment(tmp_path):
    from nbgrader.api import Gradebook

    name = "03_upsampling"  # the quickest notebook to execute
    course.write_instructor_edition(tmp_path)
    _nbgrader(tmp_path, "generate_assignment", name)
    release = tmp_path / "release" / name / f"{name}.ipynb"
    source = tmp_path / "source" / name / f"{name}.ipynb"
    for student, submission in (("unanswered", release), ("solved", source)):
        target = tmp_path / "submitted" / student / name
        target.mkdir(parents=True)
        shutil.copy(submission, target / f"{name}.ipynb")
    _nbgrader(tmp_path, "autograde", name)
    points = sum(c.metadata.nbgrader.get("points", 0)
                 for c in nbformat.read(source, as_version=4).cells if course.is_check(c))  # fmt: skip
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        unanswered = gb.find_submission(name, "unanswered")
        solved = gb.find_submission(name, "solved")
        assert (unanswered.score, unanswered.max_score) == (0, points)
        assert (solved.score, solved.max_score) == (points, points)
    assert [c.source for c in nbformat.read(release, as_version=4).cells] == [
        c.source for c in course.student_notebook(nbformat.read(source, as_version=4)).cells
    ]


def test_notebook_paths_are_the_course():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    assert all(isinstance(p, Path) for p in NOTEBOOKS)
