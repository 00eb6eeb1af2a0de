"""The example notebooks run from top to bottom, as a user runs them, and are stored with
the outputs of a run (the docs show them)."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = ["quickstart.ipynb", "tour.ipynb"]


def run(name, folder):
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(folder)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]


@pytest.mark.slow
def test_the_quickstart_notebook_runs(tmp_path):
    run("quickstart.ipynb", tmp_path)
    assert (tmp_path / "results" / "notebook" / "_catalogue.parquet").is_file()


@pytest.mark.slow
def test_the_tour_notebook_runs(tmp_path):
    run("tour.ipynb", tmp_path)
    for folder in ("steps", "flow", "adaptive", "critical/critical"):
        assert (tmp_path / "results" / "tour" / folder).is_dir(), folder


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_stored_notebooks_hold_the_outputs_of_a_run(name):
    cells = json.loads((EXAMPLES / name).read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert all(cell.get("execution_count") for cell in code), "run `make notebooks`"
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
