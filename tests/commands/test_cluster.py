"""The SLURM launcher against a real scheduler (`.ci/slurm-up` starts one on this machine),
and the status of shards (done, running, failed, pending)."""

import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from sweep import config as config_module
from sweep.commands import cluster
from sweep.commands.cli import main
from sweep.commands.runner import RunOptions, run_sweep
from sweep.commands.waves import shard_states
from sweep.config import ConfigError, shard_list
from sweep.results import progress
from sweep.results.store import ResultStore

SMALL = ["--k", "6..7", "--seeds", "64", "--set", "sweep.shard_size=8"]


def small_config():
    return config_module.load(None, {"sweep.k": "6..7", "sweep.seeds": 64, "sweep.shard_size": 8})


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "sweep"
    run_sweep(small_config(), out, RunOptions(progress=False, log=lambda *_: None))
    return pd.read_parquet(out).sort_values(["k", "n", "run"]).reset_index(drop=True)


def same_rows(frame, reference):
    frame = frame.sort_values(["k", "n", "run"]).reset_index(drop=True)
    assert len(frame) == len(reference)
    assert not frame.duplicated(["k", "n", "run"]).any()
    for column in ("k", "n", "run", "status", "steps", "stop_reason"):
        np.testing.assert_array_equal(frame[column], reference[column])
    np.testing.assert_allclose(frame["loss"], reference["loss"], rtol=0, atol=1e-9)


def array_tasks(job):
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", job, "-o", "%i %T"], capture_output=True, text=True
    )
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


@pytest.mark.slow
def test_slurm_sweep_equals_the_local_run(slurm, local_rows, tmp_path, capsys):
    out = tmp_path / "cluster"
    argv = ["run", *SMALL, "--launcher", "slurm", "--tasks", "4", "--out", str(out), "--wait"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "submitted job array" in printed and "16 done" in printed
    same_rows(pd.read_parquet(out), local_rows)
    assert (out / "_catalogue.parquet").exists()
    assert not [
        *(out / progress.MARKERS).glob("*.running"),
        *(out / progress.MARKERS).glob("*.failed"),
    ]
    # Submitting again finds nothing to do.
    assert main(argv) == 0
    assert "nothing to submit" in capsys.readouterr().out


@pytest.mark.slow
def test_cancelled_task_loses_nothing_and_a_resubmission_completes(
    slurm, local_rows, tmp_path, capsys
):
    out = tmp_path / "cluster"
    argv = ["run", *SMALL, "--launcher", "slurm", "--tasks", "4", "--out", str(out)]
    assert main(argv) == 0
    job = capsys.readouterr().out.split("submitted job array ")[1].split(":")[0]
    victim = f"{job}_1"
    deadline = time.time() + 120
    while array_tasks(job).get(victim) != "RUNNING":
        assert time.time() < deadline, "task 1 never started"
        time.sleep(0.2)
    subprocess.run(["scancel", victim], check=True)
    cluster.wait_for(job, out, log=lambda *_: None)

    states = shard_states(out)
    assert (states.state != "done").any(), "the cancelled task had finished already"
    assert not (states.state == "failed").any()
    finished = pd.read_parquet(out)  # readers see whole shards only
    assert len(finished) == 8 * (states.state == "done").sum()
    assert main(["status", str(out)]) == 0
    assert "pending" in capsys.readouterr().out

    assert main([*argv, "--wait"]) == 0
    assert "16 done" in capsys.readouterr().out
    same_rows(pd.read_parquet(out), local_rows)


@pytest.mark.slow
def test_failed_shard_is_reported_and_the_rest_go_on(tmp_path, capsys, monkeypatch):
    cfg = config_module.load(None, {"sweep.k": "4..5", "sweep.seeds": 8, "sweep.shard_size": 4})
    out = tmp_path / "sweep"
    bad = shard_list(cfg)[0].name
    write = ResultStore.write

    def failing_write(store, shard, columns):
        if shard.name == bad:
            raise MemoryError("out of memory (simulated)")
        return write(store, shard, columns)

    monkeypatch.setattr(ResultStore, "write", failing_write)
    with pytest.raises(MemoryError):
        run_sweep(cfg, out, RunOptions(progress=False, keep_going=True, log=lambda *_: None))
    states = shard_states(out).set_index("name")
    assert states.loc[bad, "state"] == "failed"
    assert states.loc[bad, "detail"] == "MemoryError: out of memory (simulated)"
    assert (states.drop(index=bad).state == "done").all()
    assert main(["status", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 failed" in printed and f"failed {bad}: MemoryError" in printed
    monkeypatch.undo()
    run_sweep(
        cfg, out, RunOptions(progress=False, log=lambda *_: None)
    )  # the resume runs just that one
    assert (shard_states(out).state == "done").all()


def test_bad_cluster_input_is_one_line(slurm, tmp_path, capsys):
    base = ["run", *SMALL, "--launcher", "slurm", "--out", str(tmp_path / "s")]
    for extra, field in [
        (["--partition", "nosuch"], "--partition: expected one of debug"),
        (["--time", "two hours"], "--time"),
        (["--tasks", "0"], "--tasks"),
        (["--slurm-arg", "qos"], "--slurm-arg"),
    ]:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {field}") and "\n" not in err


@pytest.mark.slow
def test_missing_or_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    base = ["run", *SMALL, "--launcher", "slurm", "--out", str(tmp_path / "s")]
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert main(base) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --launcher slurm: sbatch not found on PATH (run from a SLURM login node)"
    )
    monkeypatch.undo()
    if shutil.which("sinfo") is None:
        pytest.skip("no SLURM client to point at an unreachable controller")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=nowhere\nSlurmctldHost=nowhere.invalid\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --launcher slurm: cannot reach the SLURM controller (")
    assert "\n" not in err


def test_node_local_results_folder_is_refused_on_a_multi_node_cluster():
    cluster.check_shared("/work/results/x", nodes=8)
    cluster.check_shared("/tmp/x", nodes=1)
    with pytest.raises(ConfigError, match="--out: expected a folder on a filesystem shared"):
        cluster.check_shared("/tmp/x", nodes=8)


@pytest.mark.parametrize(
    "text,minutes",
    [("90", 90), ("30:00", 30), ("02:00:00", 120), ("1-12:00:00", 2160), ("1-2", 1560)],
)
def test_slurm_time_formats(text, minutes):
    assert cluster.parse_time(text) == minutes


def test_shares_spread_every_cell_over_all_tasks():
    shares = cluster.deal([f"s{i}" for i in range(10)], 4)
    assert shares == [["s0", "s4", "s8"], ["s1", "s5", "s9"], ["s2", "s6"], ["s3", "s7"]]


def test_preempted_task_requeues_itself_with_the_same_share():
    task = cluster.Task(small_config().to_raw(), "/shared/out")
    again = task.checkpoint(["a", "b"])
    assert again.function.raw_config == task.raw_config and again.args == (["a", "b"],)


def test_the_wait_asks_squeue_again_when_it_does_not_answer(monkeypatch, tmp_path):
    answers = iter([None, None, {"7", "7_1"}, None, set()])
    asked = []

    def squeue():
        asked.append(1)
        return next(answers)

    monkeypatch.setattr(cluster.progress, "live_slurm_jobs", squeue)
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/squeue")
    monkeypatch.setattr(cluster, "shard_states", lambda out: pd.DataFrame({"state": ["done"]}))
    monkeypatch.setattr(cluster.progress, "format_status", lambda states: "")
    cluster.wait_for("7", tmp_path, poll=0.0, log=lambda *_: None)
    assert len(asked) == 5  # two unanswered polls did not end the wait; an empty queue did
