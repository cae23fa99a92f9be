"""The course site (mkdocs.yml): docs/, the notebooks and the API reference build in strict mode,
so a broken link or a missing reference fails here, not in a reader's browser."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAVE_MKDOCS = all(
    importlib.util.find_spec(m) for m in ("mkdocs", "material", "mkdocs_jupyter", "mkdocstrings")
)
pytestmark = pytest.mark.skipif(
    not HAVE_MKDOCS, reason="the site's tools are not installed (pip install -e '.[docs]')"
)


def _build(config, site):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env.pop("MINIDENSE_SITE_EXECUTE", None)  # render the notebooks as stored: no execution here
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_site_has_docs_notebooks_and_api(site):
    for page in ("index.html", "getting-started/index.html", "ablation/index.html",
                 "notebooks/index.html", "api/functional/index.html"):  # fmt: skip
        assert (site / page).is_file(), page
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for nb in notebooks:
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name
    api = (site / "api" / "functional" / "index.html").read_text()
    assert "roi_align" in api and "conv2d" in api  # rendered from the docstrings


def test_site_shows_the_student_edition(site):
    page = (site / "notebooks" / "04_unet_segmentation" / "index.html").read_text()
    assert "NotImplementedError" in page
    assert "BEGIN SOLUTION" not in page and "2 / 4, 3 / 4, 1 / 2" not in page


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    done = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stdout + done.stderr
