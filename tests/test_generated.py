"""The generated docs pages: each names the script and the commit its numbers were made
at (`benchmarks/provenance.py`), and the docs build says when its code changed since."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs" / "generated").glob("*.md"))


def hooks():
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_history(commit):
    """Whether git knows the commit here (None: no git history to ask, e.g. a shallow or
    exported copy)."""
    try:
        asked = ["git", "rev-parse", "--is-shallow-repository"]
        shallow = subprocess.run(asked, cwd=ROOT, capture_output=True, text=True, check=True)
        shallow = shallow.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if shallow == "true":
        return None
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT)
    return found.returncode == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_generated_page_names_its_script_and_commit(page):
    found = hooks().provenance(page)
    assert found["script"], f"{page.name}: no '<!-- made by SCRIPT at commit SHA -->' line"
    script = found["script"].split()[0]
    assert script == "make" or (ROOT / script).is_file(), found["script"]
    assert in_history(found["commit"]) in (True, None), f"{page.name}: unknown commit"


def test_a_page_whose_code_changed_gets_a_note(tmp_path):
    module = hooks()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    if not head or in_history(head) is not True:
        pytest.skip("no git history here")
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split()[0]  # fmt: skip
    page = tmp_path / "page.md"
    page.write_text(f"<!-- made by benchmarks/bench.py at commit {first} -->\n| a |\n")
    assert module.provenance(page)["changed"] > 0
    page.write_text("| a |\n")
    assert module.provenance(page)["script"] is None
