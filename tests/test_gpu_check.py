"""`make gpu-check` runs as a dry run on the CPU, with every column of its table."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
COLUMNS = [
    "workload", "device", "runs", "cold (s)", "warm (s)", "runs in flight per device",
    "training", "finishes", "classification", "compilation", "peak device memory",
    "statuses vs CPU",
]  # fmt: skip


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_with_every_column(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [
        sys.executable,
        str(SCRIPT),
        "--tiny",
        "--compare-seeds",
        "4",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "gpu-check.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| workload"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == COLUMNS
    rows = [line for line in table if line.startswith("| Table 1")]
    assert len(rows) == 2
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1].endswith("cpu") and cells[2] == "16"
        assert float(cells[3]) > 0 and float(cells[4]) > 0 and int(cells[5]) >= 1
        assert cells[-1] == "same (8 runs)"  # 4 runs per cell of 2 cells, on the CPU twice
