"""mkdocs hook: puts the README and the course notebooks, which live outside docs/, into the site.

The notebooks are published as the **student edition** (answers removed, as
``python -m minidense notebooks --student`` writes them), so the course site gives no answer
away; ``MINIDENSE_SITE_SOLUTIONS=true`` builds an instructor's site with the solutions.

The Markdown files keep the links that work when browsing the repository (``../notebooks/X``,
``../README.md`` from docs/; ``docs/X``, ``notebooks/X`` from the README); this hook maps them to
the site's paths, so both readings have working links and mkdocs' strict mode still checks them.
"""

import os
import re
from pathlib import Path

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

from minidense.course import course_notebooks, student_notebook

ROOT = Path(__file__).resolve().parent.parent
EDITION = ROOT / ".cache" / "site-notebooks"  # git-ignored; rewritten at every build


def _course_index(paths):
    lines = [
        "# The course",
        "",
        f"The {len(paths)} notebooks below are lectures with exercises; take them in order.",
        "",
    ]
    for path in paths:
        number, title = path.stem.split("_", 1)
        lines.append(f"- [{number} · {title.replace('_', ' ')}]({path.name})")
    lines += [
        "",
        "These pages show the student edition: each exercise's answer cell holds",
        "`raise NotImplementedError()`. To work through them, write your own copy with",
        "`python -m minidense notebooks --student DIR` and open it in Jupyter (see",
        "[Getting started](../getting-started.md)).",
    ]
    return "\n".join(lines) + "\n"


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns notebooks into pages
def on_files(files, config):
    paths = course_notebooks()
    solutions = os.environ.get("MINIDENSE_SITE_SOLUTIONS", "").lower() in ("1", "true")
    for path in paths:  # real files under EDITION, so mkdocs-jupyter renders them as pages
        nb = nbformat.read(path, as_version=4)
        target = EDITION / "notebooks" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb if solutions else student_notebook(nb), target)
        files.append(File(f"notebooks/{path.name}", str(EDITION), config.site_dir,
                          config.use_directory_urls))  # fmt: skip
    files.append(File.generated(config, "getting-started.md", abs_src_path=str(ROOT / "README.md")))
    files.append(File.generated(config, "notebooks/index.md", content=_course_index(paths)))
    return files


# Repository-relative link targets -> site paths, per page: (pattern, replacement).
_FROM_DOCS = [
    (r"\]\(\.\./README\.md", "](getting-started.md"),
    (r"\]\(\.\./notebooks/\)", "](notebooks/index.md)"),
    (r"\]\(\.\./notebooks/", "](notebooks/"),
]
_FROM_README = [(r"\]\(docs/", "]("), (r"\]\(notebooks/\)", "](notebooks/index.md)")]


def on_page_markdown(markdown, page, config, files):
    rules = _FROM_README if page.file.src_uri == "getting-started.md" else _FROM_DOCS
    for pattern, replacement in rules:
        markdown = re.sub(pattern, replacement, markdown)
    return markdown
