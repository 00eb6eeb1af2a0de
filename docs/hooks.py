"""MkDocs hook: pages name generated tables by markers, filled from the code at build time,
so the configuration reference, the result columns and the layout never drift from it.

- `<!-- config-reference -->`: every config field with its default, meaning and values;
- `<!-- result-columns -->`: every column of the runs table, and the enumerations' values;
- `<!-- layout -->`: the packages bottom to top, from `tests/test_layers.py`;
- `<!-- limits -->`: every tolerance and size limit, from `sweep/limits.py`;
- `<!-- notebook -->`: the cells of `examples/quickstart.ipynb`.
"""

import dataclasses
import importlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _value(value) -> str:
    from sweep.config.schema import toml_value

    return f"`{toml_value(value)}`"


def _allowed(meta: dict) -> str:
    if meta.get("choices"):
        return ", ".join(f"`{c}`" for c in meta["choices"])
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    left = "" if low is None else f"{low} {'<' if meta.get('low_open') else '<='} "
    right = "" if high is None else f" <= {high}"
    return f"{left}x{right}"


def config_reference() -> str:
    from sweep.config.expressions import format_k
    from sweep.config.schema import SECTIONS, Config

    parts = []
    for name, cls in [("sweep", Config), *SECTIONS.items()]:
        lines = [
            f"### `[{name}]`",
            "",
            "| field | default | meaning | allowed |",
            "|---|---|---|---|",
        ]
        for field in dataclasses.fields(cls):
            if "doc" not in field.metadata or field.name == "grid":  # a table of its own
                continue
            value = field.default
            if name == "sweep" and field.name == "k":
                value = format_k(value)
            doc = field.metadata["doc"].replace("|", "\\|")
            lines.append(
                f"| `{field.name}` | {_value(value)} | {doc} | {_allowed(field.metadata)} |"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def result_columns() -> str:
    from sweep.outcomes import DecidedBy, Status, StopReason
    from sweep.results.runs_table import COLUMNS

    lines = ["| column | type | what it holds |", "|---|---|---|"]
    for name, (kind, doc) in COLUMNS.items():
        shown = f"`{kind}`"
        # Integer columns that only some problems fill hold nulls elsewhere, and pandas
        # reads an integer column with nulls as float64.
        scoped = re.match(r"^[\w -]+: ", doc) is not None  # "gradient flow: ..."
        if str(kind) == "int64" and (scoped or "null" in doc):
            shown += " (null where it does not apply; pandas: `float64`)"
        lines.append(f"| `{name}` | {shown} | {doc} |")
    for enum in (StopReason, Status, DecidedBy):
        lines += ["", f"### `{enum.__name__}`", "", "| value | meaning |", "|---|---|"]
        for member in enum:
            value = member.label if enum is StopReason else member.value
            lines.append(f"| `{value}` | {member.meaning} |")
    return "\n".join(lines)


def layout() -> str:
    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests" / "test_layers.py")
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    lines = ["| layer | package or module | what it holds |", "|---|---|---|"]
    for rank, names in enumerate(layers.LAYERS):
        for name in names:
            if name in ("__init__", "__main__"):
                continue
            module = importlib.import_module(f"sweep.{name}")
            doc = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            kind = "package" if hasattr(module, "__path__") else "module"
            where = f"`sweep/{name}/`" if kind == "package" else f"`sweep/{name}.py`"
            lines.append(f"| {rank} | {where} | {doc} |")
    return "\n".join(lines)


def limits() -> str:
    """The table of tolerances and size limits, from `sweep/limits.py`: each constant with
    the comment above it."""
    lines = ["| name | value | meaning |", "|---|---|---|"]
    comment = []
    for line in (ROOT / "sweep" / "limits.py").read_text().splitlines():
        if line.startswith("# ---"):
            section = line.strip("# -")
            lines.append(f"| **{section}** | | |")
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# "))
        elif "=" in line and line.split("=")[0].strip().isupper():
            name, value = (part.strip() for part in line.split("=", 1))
            lines.append(f"| `{name}` | `{value}` | {' '.join(comment)} |")
            comment = []
        else:
            comment = []
    return "\n".join(lines)


def _outputs(cell: dict) -> list[str]:
    """A code cell's stored outputs as Markdown: text as a block, figures inline."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream" and output["name"] == "stdout":
            parts.append("```text\n" + "".join(output["text"]).rstrip() + "\n```")
        data = output.get("data", {})
        if "image/png" in data:
            parts.append(f"![output](data:image/png;base64,{data['image/png'].strip()})")
        elif "text/plain" in data:
            parts.append("```text\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    return parts


def notebook(name: str = "quickstart.ipynb") -> str:
    """A notebook's cells as stored (executed by `make notebooks`): its text, its code as
    Python blocks, and each code cell's outputs."""
    cells = json.loads((ROOT / "examples" / name).read_text())["cells"]
    parts = []
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(text)
            continue
        parts.append(f"```python\n{text}\n```")
        parts += _outputs(cell)
    return "\n\n".join(parts)


def tour() -> str:
    return notebook("tour.ipynb")


MARKERS = {
    "<!-- config-reference -->": config_reference,
    "<!-- result-columns -->": result_columns,
    "<!-- layout -->": layout,
    "<!-- limits -->": limits,
    "<!-- notebook -->": notebook,
    "<!-- tour -->": tour,
}


STAMP = re.compile(r"<!-- made by (.+?) (at|before) commit ([0-9a-f]{40})(\+changes)? -->")
SNIPPET = re.compile(r'^--8<-- "(docs/generated/[\w.-]+\.md)"$', flags=re.M)


def _sources() -> tuple[str, ...]:
    """What a generated page's numbers depend on: `benchmarks/provenance.py`'s list."""
    path = ROOT / "benchmarks" / "provenance.py"
    spec = importlib.util.spec_from_file_location("provenance", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SOURCES


def provenance(page: Path) -> dict:
    """A generated page's stamp: the script, the commit, and the commits since then that
    changed the code its numbers depend on (None where git cannot tell)."""
    found = STAMP.match(page.read_text())
    if found is None:
        return {"script": None, "commit": None, "changed": None}
    script, _, commit, dirty = found.groups()
    try:
        since = subprocess.run(
            ["git", "rev-list", "--count", f"{commit}..HEAD", "--", *_sources()],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        changed = int(since) + bool(dirty)
    except (OSError, subprocess.CalledProcessError, ValueError):
        changed = None  # no git here, or a shallow clone without that commit
    return {"script": script, "commit": commit, "changed": changed}


def _stale_note(match: re.Match) -> str:
    """After a generated page's include: a note where its code has changed since."""
    found = provenance(ROOT / match.group(1))
    if not found["changed"]:
        return match.group(0)
    return (
        f'{match.group(0)}\n\n!!! note "Made with earlier code"\n    These numbers were made '
        f"by `{found['script']}` at commit `{found['commit'][:10]}`; {found['changed']} "
        "later commits changed the code they depend on (refactors that keep every row "
        "identical count too). `make findings` makes them again.\n"
    )


def on_page_markdown(markdown: str, **_) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return SNIPPET.sub(_stale_note, markdown)
