import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweep.commands.cli import main

ROOT = Path(__file__).parents[2]
TINY = ["--k", "4", "--seeds", "6", "--no-progress"]


def error_line(capsys, argv):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["run", "--k", "20..6"], "sweep.k: expected"),
        (["run", "--n", "k-30"], "sweep.n: expected student widths >= 1"),
        (["run", "--seeds", "-5"], "sweep.seeds: expected an integer >= 1"),
        (["run", "--seeds", "ten"], "--seeds: expected an integer"),
        (["run", "--colour", "red"], "arguments: expected valid arguments"),
        (["walk"], "arguments: expected valid arguments"),
        (["run", "no/such/config.toml"], "CONFIG: no such file"),
        (["run", "--k", "6", "--n", "k-1"], "sweep.n: expected student widths n >= k"),
        (["run", "--k", "0"], "sweep.k: expected teacher widths >= 1"),
        (["run", "--set", "sweep.sedes=3"], "sweep.sedes: unknown key; did you mean sweep.seeds?"),
        (["critical", "--k", "0", "--out", "x"], "--k: expected teacher widths >= 1"),
        (["replay", "somewhere"], "arguments: expected valid arguments"),
    ],
)
def test_bad_arguments(capsys, argv, expected):
    assert error_line(capsys, argv).startswith("error: " + expected)


def test_bad_config_file(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optimizer]\nstep_size = 0\n")
    assert "optimizer.step_size: expected a step size > 0" in error_line(capsys, ["run", str(bad)])
    bad.write_text('[sweep]\nk = "6..8"\nfrobnicate = 1\n')
    assert "sweep.frobnicate: unknown key; known keys: name" in error_line(
        capsys, ["run", str(bad)]
    )
    bad.write_text("[sweep\n")
    assert "expected valid TOML" in error_line(capsys, ["run", str(bad)])


def test_output_path_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    line = error_line(capsys, ["run", *TINY, "--out", str(target)])
    assert line.startswith("error: --out: expected a folder")
    assert target.read_text() == "keep me"


def test_unwritable_output(capsys, tmp_path):
    line = error_line(capsys, ["run", *TINY, "--out", "/proc/sweep-results"])
    assert line.startswith("error: --out: expected a folder that can be created")
    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "a writable folder" in error_line(capsys, ["run", *TINY, "--out", str(locked)])


@pytest.mark.slow
def test_run_prints_summary_and_writes_results(capsys, tmp_path):
    out = tmp_path / "cli"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "% spurious [95% CI]" in printed and "|  4 |  4 |    6 |" in printed
    assert len(pd.read_parquet(out)) == 6
    # Same command again: nothing to train; another config into the same folder: refused.
    assert main(["run", *TINY, "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    line = error_line(capsys, ["run", "--k", "4", "--seeds", "7", "--out", str(out)])
    assert "sweep.seeds = 6" in line and "--fresh" in line


@pytest.mark.slow
def test_module_entry_point_exit_status(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sweep", "run", "--k", "20..6"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: sweep.k: expected")
    assert len(done.stderr.strip().splitlines()) == 1


def test_version_help_and_debug_anywhere(capsys):
    from sweep import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"sweep {__version__}"
    assert main([]) == 0  # no arguments: the help, not an error
    shown = capsys.readouterr().out
    assert shown.startswith("usage: sweep") and "critical" in shown and "``" not in shown
    # --debug is accepted after the command too.
    assert main(["status", "/no/such/folder", "--debug"]) == 2
