"""Where a generated docs page comes from: the commit its numbers were made at.

Every script that writes into docs/generated/ starts its page with `stamp()`, an HTML
comment the docs build reads (docs/hooks.py): it shows a note on any page whose code has
changed since, and `tests/test_generated.py` checks that every page carries one.
"""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a page's numbers depend on: a later change here may change them.
SOURCES = ("sweep", "configs", "benchmarks")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def commit() -> str:
    """HEAD's hash, with "+changes" where the sources differ from it (the numbers then
    come from code no commit holds)."""
    head = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--", *SOURCES)
    return head + ("+changes" if dirty else "")


def stamp(script: str) -> str:
    """The first line of a generated page: `<!-- made by SCRIPT at commit SHA -->`."""
    return f"<!-- made by {script} at commit {commit()} -->"
