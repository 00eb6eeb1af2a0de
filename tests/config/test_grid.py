"""Extra sweep axes (`[grid]`, `--grid`): cells, typed columns, paired starts, grouping,
resume and SLURM."""

import signal
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import sweep
from sweep import config as config_module
from sweep import problems
from sweep.commands.cli import main
from sweep.commands.waves import shard_states
from sweep.config import ConfigError, cells
from sweep.objectives.initializers import run_key
from sweep.reports import format_summary, summary
from sweep.results.progress import format_status

STEPS = ["--grid", "optimizer.step_size=1/k,5/k"]


def test_axes_multiply_the_cells_in_a_fixed_order():
    config = config_module.from_dict(
        {"sweep": {"k": [6, 7], "n": "k..k+1"},
         "grid": {"optimizer.step_size": ["1/k", 0.5], "init": {"kind": ["xavier", "he"]}}}
    )  # fmt: skip
    grid = cells(config)
    assert len(grid) == 2 * 2 * 2 * 2
    assert [c.key for c in grid[:4]] == [
        (6, 6, "1/k", "xavier"), (6, 6, "1/k", "he"), (6, 6, "0.5", "xavier"), (6, 6, "0.5", "he")
    ]  # fmt: skip
    assert grid[2].step_size == 0.5 and grid[0].step_size == pytest.approx(1 / 6)
    assert grid[1].init_scale == pytest.approx(np.sqrt(2 / 6))
    assert len({c.label for c in grid}) == len(grid)  # one file name per cell
    # Without a grid nothing changes: the labels of existing sweep folders stay.
    assert cells(config_module.load(None))[0].label == "k06-n06-d06"


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"engine.batch_size": [8]}, "grid.engine.batch_size: expected a field of problem"),
        ({"sweep.seeds": [8]}, "grid.sweep.seeds: expected a field of problem"),
        ({"optimizer.kind": ["sgd"]}, "grid.optimizer.kind: expected one of gd"),
        ({"optimizer.step_size": []}, "grid.optimizer.step_size: expected a non-empty list"),
        ({"optimizer.step_size": ["1/k", "1/k"]}, "expected distinct values"),
        ({"optimizer.step_size": ["-1/k"]}, "grid.optimizer.step_size: expected a step size > 0"),
        ({"stop.max_steps": [10, 0]}, "grid.stop.max_steps: expected an integer >= 1"),
    ],
)
def test_a_bad_axis_is_one_line_naming_it(grid, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config_module.from_dict({"grid": grid})


def test_command_line_axes_reach_the_config():
    config = config_module.load(None, {"grid.optimizer.step_size": ["1/k", "5/k"]})
    assert config.grid == (("optimizer.step_size", ("1/k", "5/k")),)
    assert main(["run", "--grid", "optimizer.step_size", "--seeds", "1"]) == 2


def test_a_run_starts_from_the_same_point_whatever_the_step(tmp_path):
    """One step at two step sizes from W0: W1 = W0 - eta g(W0) gives W0 back exactly when
    both cells started at the same W0, and that W0 is the run's key's draw."""
    out = tmp_path / "one_step"
    argv = ["run", "--k", "6..7", "--seeds", "5", *STEPS, "--grid", "init.kind=xavier,he",
            "--set", "stop.max_steps=1", "--set", "stop.polish_after=0",
            "--set", "stop.basin_grad=0", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    runs = sweep.load(out)
    assert len(runs) == 2 * 2 * 2 * 5
    assert set(runs["stop_reason"]) == {"max_steps"}
    for (k, init), cell in runs.groupby(["k", "init.kind"]):
        slow, fast = (
            cell[cell["optimizer.step_size"] == s].sort_values("run") for s in ("1/k", "5/k")
        )
        w_slow, w_fast = np.stack(slow["weights"]), np.stack(fast["weights"])
        start = (5 * w_slow - w_fast) / 4  # eta = 1/k and 5/k
        config = config_module.load(None, {"sweep.k": k, "init.kind": init})
        objective = problems.for_cell(config, cells(config)[0]).objective
        scale = cells(config)[0].init_scale
        for run, found in zip(slow["run"], start, strict=True):
            drawn = objective.init(run_key(0, k, k, k, run), scale, jnp.float64)
            np.testing.assert_allclose(found.reshape(k, k), drawn, rtol=0, atol=1e-12)
    # The two inits differ only by their scale: the same draws.
    he, xavier = (runs[(runs["init.kind"] == i) & (runs["k"] == 6)] for i in ("he", "xavier"))
    assert not np.allclose(np.stack(he["weights"]), np.stack(xavier["weights"]))


def test_rows_catalogue_summary_and_proofs_carry_every_axis(tmp_path):
    out = tmp_path / "steps"
    argv = ["run", "--k", "7", "--seeds", "24", *STEPS, "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    runs = sweep.load(out)
    assert runs["optimizer.step_size"].tolist() == ["1/k"] * 24 + ["5/k"] * 24
    np.testing.assert_allclose(runs["step_size"], [1 / 7] * 24 + [5 / 7] * 24)
    assert len(sweep.load(out, **{"optimizer.step_size": "5/k"})) == 24
    table = summary(runs)
    assert table["optimizer.step_size"].tolist() == ["1/k", "5/k"]
    assert "optimizer.step_size" in format_summary(table)
    text, pngs = sweep.reports.write_report(out)
    assert "5/k" in text and all(png.exists() for png in pngs)
    assert "a [grid] axis over optimizer.step_size" in text  # no published row applies
    status = format_status(shard_states(out)).splitlines()
    assert "optimizer.step_size" in status[0]
    assert [line.split("|")[3].strip() for line in status[2:4]] == ["1/k", "5/k"]
    catalogue = sweep.load(out, table="catalogue")
    assert set(catalogue["optimizer.step_size"]) == {"1/k", "5/k"}
    for step, cell in catalogue.groupby("optimizer.step_size"):
        assert cell["multiplicity"].sum() == 24, step
    proved = sweep.certify(out, workers=1)
    assert (proved["certified"] == "proved").all()
    runs = sweep.load(out)
    assert runs["certified"].all() and len(runs) == 48
    # A replay names the cell by its axis value.
    history, final = sweep.replay(out, 7, 7, 3, **{"optimizer.step_size": "5/k"})
    stored = runs[(runs["run"] == 3) & (runs["optimizer.step_size"] == "5/k")].iloc[0]
    assert final["status"] == stored["status"] and final["steps"] == stored["steps"]
    with pytest.raises(ConfigError, match="--at: expected one value for each axis"):
        sweep.replay(out, 7, 7, 3)


def _rows(folder):
    keys = ["k", "n", "optimizer.step_size", "run"]
    return sweep.load(folder).sort_values(keys).reset_index(drop=True)


def _same_rows(frame, reference):
    assert (
        len(frame)
        == len(reference)
        == len(frame.drop_duplicates(["k", "optimizer.step_size", "run"]))
    )
    for column in ("k", "n", "optimizer.step_size", "run", "status", "steps", "loss"):
        np.testing.assert_array_equal(frame[column], reference[column])


GRID_SWEEP = ["--k", "6..8", "--seeds", "24", *STEPS, "--set", "sweep.shard_size=6",
              "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "whole"
    assert main(["run", *GRID_SWEEP, "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_a_grid_sweep_resumes_after_kill_9(whole, tmp_path):
    assert len(sweep.load(whole)) == 6 * 24  # 3 k x 2 steps
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "sweep", "run", *GRID_SWEEP, "--out", str(out)]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    while time.monotonic() - start < 120 and worker.poll() is None:
        if len(list((out / "runs").glob("*.parquet"))) >= 5:
            break
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    assert 5 <= len(list((out / "runs").glob("*.parquet"))) < 24
    assert main(["run", *GRID_SWEEP, "--out", str(out)]) == 0
    _same_rows(_rows(out), _rows(whole))


@pytest.mark.slow
def test_a_grid_sweep_through_slurm_gives_the_local_rows(slurm, whole, tmp_path):
    out = tmp_path / "cluster"
    argv = ["run", *GRID_SWEEP, "--launcher", "slurm", "--tasks", "3", "--out", str(out), "--wait"]
    assert main(argv) == 0
    _same_rows(_rows(out), _rows(whole))
    pd.testing.assert_frame_equal(
        sweep.load(out, table="catalogue").drop(columns="weights"),
        sweep.load(whole, table="catalogue").drop(columns="weights"),
    )
