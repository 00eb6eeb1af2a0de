"""The package's shape: imports flow one way through its layers, the problem kind is
dispatched in one place, and modules stay small."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sweep"

# Bottom to top. A module imports from its own package and from lower layers only, never
# from a package beside it in its layer or above it. The README's layout table lists the
# same packages in the same order (tested below).
LAYERS = [
    ["outcomes", "config", "runtime", "confidence", "limits", "version"],
    ["objectives", "programs"],  # losses and data; how runs map onto compiled programs
    ["finishes", "kinks", "symmetry"],  # finishes (smooth and on kinks), symmetry
    ["proofs", "diagnostics"],  # proofs; spectra, escape test, catalogue
    ["problems"],  # one module per problem kind behind one interface
    ["engine"],  # continuous batching: scheduler, slots, starts, steps, phases
    ["results"],  # the results folder: layout, runs table, store, checksums, progress
    ["reports"],  # summary tables and figures
    ["commands"],  # entry points: cli, runner, cluster, replay, certify, critical
    ["api", "__init__", "__main__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ENTRY = {"api", "__init__", "__main__"}  # the package's face: they import each other


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def top_name(path):
    """The first component below sweep/ ("problems" for sweep/problems/base.py)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported(path):
    """Top-level sweep components this module imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for sweep/x.py
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb to the package root
                climb = node.level - 1
                if climb < depth:  # within its own subpackage
                    found.add(top_name(path))
                    continue
                names = (node.module or "").split(".")
                found.update([names[0]] if names[0] else [a.name for a in node.names])
            elif node.module and node.module.split(".")[0] == "sweep":
                rest = node.module.split(".")[1:]
                found.update(rest[:1] or [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sweep" and len(parts) > 1:
                    found.add(parts[1])
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    mine = top_name(path)
    assert mine in RANK, f"{mine}: add it to a layer in {__file__}"
    for other in imported(path):
        assert other in RANK, f"{path.name} imports {other}, which has no layer"
        assert other == mine or RANK[other] < RANK[mine] or mine in ENTRY, (
            f"{mine} (layer {RANK[mine]}) imports {other} (layer {RANK[other]})"
        )


def test_storage_never_imports_the_engine_or_the_problems():
    for path in (PACKAGE / "results").rglob("*.py"):
        assert not imported(path) & {"engine", "problems", "objectives"}, path.name


def test_the_problem_kind_is_dispatched_in_one_place():
    allowed = {PACKAGE / "problems", PACKAGE / "config"}
    for path in modules():
        if any(folder in path.parents for folder in allowed):
            continue
        text = path.read_text()
        assert not re.search(r"kind\s*==", text), f"{path.name} branches on a kind"
        assert not re.search(r"\.(data|activation|teacher)\s*==", text), path.name
        assert "gaussian_relu" not in text and '"empirical"' not in text, path.name


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 400


def test_the_readme_layout_table_is_the_layers():
    readme = (PACKAGE.parent / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", readme, flags=re.M)
    listed = [[name.strip("` ") for name in names.split(",")] for _, names in rows]
    expected = [[name for name in names if not name.startswith("__")] for names in LAYERS]
    assert listed == expected


# Attributes that are public by convention though they start with an underscore.
CONVENTIONS = {"_replace", "_asdict", "_fields", "_make", "_member_type_", "_value_"}


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def reached_private_names(source):
    """`_private` names a module imports from another, or uses as an attribute without
    defining that name itself (another module's, or another class's)."""
    tree = ast.parse(source)
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.id if isinstance(node, ast.Name) else node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [alias.name for alias in node.names if _private(alias.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr not in own and node.attr not in CONVENTIONS:
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_reaches_another_modules_private_names(path):
    assert reached_private_names(path.read_text()) == []


def test_the_private_name_check_catches_both_forms():
    assert reached_private_names("from .certificate import _below, upper") == ["_below"]
    assert reached_private_names("from . import enclosures as E\nE._angle(1)") == ["E._angle"]
    assert reached_private_names("def _own():\n    pass\nx = self._own()") == []


TESTS = PACKAGE.parent / "tests"


@pytest.mark.parametrize("path", sorted(TESTS.rglob("test_*.py")), ids=lambda p: p.name)
def test_tests_use_public_names_and_import_no_other_test(path):
    source = path.read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.split(".")[-1].startswith("test_"), node.module
            if node.module.startswith("sweep"):
                assert not [a.name for a in node.names if _private(a.name)], node.module
    if path.name != "test_layers.py":
        allowed = {"_cache_size"}  # jax.jit's own API
        found = [name for name in reached_private_names(source) if name.split(".")[-1]
                 not in allowed]  # fmt: skip
        assert found == [], found
