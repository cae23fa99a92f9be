"""Results measured once and shipped with minidense (``experiments/records/*.json``), so that a
notebook can show what a long run gives beside a short live one, without the wait.

Each file holds ``about`` — how it was measured: the command that reproduces it, the date, the
commit, the machine and the time it took — and ``runs``, the records the command wrote.
"""

import json
from pathlib import Path

RECORDS = Path(__file__).with_name("records")


def available():
    """The names of the shipped records."""
    return sorted(p.stem for p in RECORDS.glob("*.json"))


def load_record(name):
    """The record ``name`` (see ``available()``) as a dict ``{"about": {...}, "runs": [...]}``."""
    names = available()
    if name not in names:
        raise ValueError(f"name must be one of {names}, got {name!r}")
    with open(RECORDS / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def describe(about):
    """One line that labels shipped numbers as measured, and says how to reproduce them."""
    return (f"measured {about['date']} on {about['machine']} (commit {about['commit']}): "
            f"`{about['command']}`, {about['duration']}")  # fmt: skip
