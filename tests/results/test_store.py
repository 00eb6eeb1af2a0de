"""The results folder: every reader sees exactly the runs, damaged shards are named, moved
aside and trained again, and a full disk ends a sweep with one line and nothing lost."""

import errno
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sweep
from sweep.commands.cli import main
from sweep.results import store

SMALL = ["--k", "6..8", "--seeds", "8", "--set", "sweep.shard_size=4", "--no-progress"]


def run(out, *extra):
    return main(["run", *SMALL, *extra, "--out", str(out)])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted k = 6..8 sweep (8 runs per cell, shards of 4)."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    assert run(out) == 0
    return out


def rows(folder):
    return sweep.load(folder).sort_values(["k", "run"]).reset_index(drop=True)


def same_rows(a, b):
    for column in ("k", "n", "d", "run", "status", "stop_reason", "steps"):
        assert (a[column] == b[column]).all(), column
    assert (a["loss"] == b["loss"]).all()


@pytest.mark.slow
def test_every_reader_reads_exactly_the_runs(reference):
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    runs = reference / "runs"
    counts = {
        "pandas, sweep folder": len(pd.read_parquet(reference)),
        "pandas, runs folder": len(pd.read_parquet(runs)),
        "pyarrow.dataset": ds.dataset(runs).count_rows(),
        "polars, folder": pl.read_parquet(runs).height,
        "polars, glob": pl.scan_parquet(f"{runs}/*.parquet").collect().height,
        "duckdb": duckdb.sql(f"select count(*) from read_parquet('{runs}/*.parquet')").fetchall()[
            0
        ][0],
        "sweep.load": len(sweep.load(reference)),
    }
    assert counts == dict.fromkeys(counts, 24), counts
    assert all(str(t) == "int64" for t in pd.read_parquet(runs)[["k", "n", "d"]].dtypes)
    assert all(t == pl.Int64 for t in pl.read_parquet(runs).select("k", "n", "d").dtypes)
    types = duckdb.sql(
        f"select typeof(k), typeof(n), typeof(d) from read_parquet('{runs}/*.parquet') limit 1"
    ).fetchall()
    assert types == [("BIGINT", "BIGINT", "BIGINT")]


@pytest.mark.slow
def test_a_truncated_shard_is_named_moved_aside_and_trained_again(reference, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert run(out) == 0
    shard = sorted((out / "runs").glob("*.parquet"))[2]
    with open(shard, "r+b") as f:
        f.truncate(3000)
    capsys.readouterr()
    assert len(sweep.load(out)) == 20  # a reader skips it, and says so
    assert capsys.readouterr().err.count(shard.name) == 1
    assert main(["report", str(out)]) == 0  # named, moved aside
    lines = [line for line in capsys.readouterr().err.splitlines() if shard.name in line]
    assert len(lines) == 1 and "truncated" in lines[0]
    assert not shard.exists() and len(list((out / "_damaged").iterdir())) == 1
    assert main(["status", str(out)]) == 0
    assert "1 pending" in capsys.readouterr().out
    assert run(out) == 0  # trains just that shard again
    same_rows(rows(out), rows(reference))
    # The next run finds one by itself: one line, then it trains the shard again.
    shard = sorted((out / "runs").glob("*.parquet"))[4]
    with open(shard, "r+b") as f:
        f.truncate(3000)
    capsys.readouterr()
    assert run(out) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if shard.name in line]
    assert len(lines) == 1 and "truncated" in lines[0]
    same_rows(rows(out), rows(reference))


@pytest.mark.slow
def test_a_damaged_manifest_or_catalogue_is_one_line(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert run(out) == 0
    minima = out / "_catalogue.parquet"
    before = sweep.load(out, table="catalogue")
    minima.write_bytes(minima.read_bytes()[:100])
    capsys.readouterr()
    assert main(["report", str(out)]) == 0  # the runs, without the catalogue
    assert "_catalogue.parquet is damaged" in capsys.readouterr().err
    assert run(out) == 0  # rebuilds it
    after = sweep.load(out, table="catalogue")  # the same catalogue as before the damage
    assert len(before) > 0 and pq.read_metadata(minima).num_rows == len(before)
    assert after[["k", "point", "status", "loss"]].equals(before[["k", "point", "status", "loss"]])
    (out / "_manifest.json").write_text('{"sweep": ')
    for command in (["status", str(out)], ["report", str(out)], ["run", *SMALL, "--out", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "_manifest.json is damaged" in err, err


@pytest.mark.slow
def test_a_foreign_file_and_a_killed_writers_temporary_are_cleared(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert run(out) == 0
    (out / "runs" / "notes.parquet").write_bytes(b"not a shard")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = socket.gethostname().replace(".", "_")
    stray = out / "_tmp" / f"k06.parquet.{host}.{dead}.1.tmp"
    stray.write_bytes(b"half a file")
    capsys.readouterr()
    assert run(out) == 0
    said = capsys.readouterr().out
    assert "notes.parquet: not a shard of this sweep; moved to" in said
    assert not stray.exists() and stray.name in said
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        p.name for p in (out / "runs").glob("k*.parquet")
    )


@pytest.mark.slow
def test_a_folder_of_an_earlier_version_is_migrated(reference, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(reference, old)
    for path in (old / "runs").iterdir():  # shards beside the manifest, no records
        path.rename(old / path.name)
    (old / "runs").rmdir()
    shutil.rmtree(old / "_status")
    capsys.readouterr()
    same_rows(rows(old), rows(reference))
    assert "(6 shards into runs/)" in capsys.readouterr().err
    assert run(old) == 0 and "6 of 6 shards already complete" in capsys.readouterr().out


@pytest.mark.slow
def test_a_catalogue_under_its_old_name_is_renamed(reference, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(reference, old)
    (old / "_catalogue.parquet").rename(old / "_minima.parquet")
    catalogue = sweep.load(old, table="catalogue")
    assert (old / "_catalogue.parquet").is_file() and not (old / "_minima.parquet").exists()
    pd.testing.assert_frame_equal(catalogue, sweep.load(reference, table="catalogue"))


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_with_one_line(reference, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    attempts = []
    write = pq.write_table

    def fills_up(table, where, **kwargs):
        attempts.append(where)
        if len(attempts) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
        return write(table, where, **kwargs)

    monkeypatch.setattr(store.pq, "write_table", fills_up)
    assert run(out) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {out}: cannot write results (no space left on device)")
    assert len(attempts) == 3  # it stopped at once, not training on with nowhere to write
    finished = sorted((out / "runs").glob("*.parquet"))
    assert len(finished) == 2 and all(pq.read_table(f).num_rows == 4 for f in finished)
    assert not list((out / "_tmp").iterdir())
    monkeypatch.setattr(store.pq, "write_table", write)
    assert run(out) == 0  # space again: the resume just works
    same_rows(rows(out), rows(reference))


@pytest.mark.slow
def test_the_traceback_is_there_on_request(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.pq, "write_table", full)
    with pytest.raises(store.StorageError):
        main(["--debug", "run", *SMALL, "--out", str(tmp_path / "sweep")])


def _mount_tmpfs(folder, size):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


@pytest.mark.slow
def test_a_really_full_disk(reference, tmp_path):
    """The same on a 200 KB tmpfs (where this test may mount one)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "200k"):
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated test covers it")
    try:
        out = disk / "sweep"
        argv = [sys.executable, "-m", "sweep", "run", *SMALL, "--seeds", "64", "--out", str(out)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 1
        err = done.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: {out}: cannot write results (no space left on device)")
        finished = sorted((out / "runs").glob("*.parquet"))
        assert finished and all(pq.read_table(f).num_rows == 4 for f in finished)
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        resumed = sweep.load(out)
        assert np.array_equal(resumed.groupby("k").size(), [64, 64, 64])
        assert np.array_equal(resumed.groupby("k")["run"].nunique(), [64, 64, 64])
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow
def test_kill_9_loses_nothing_finished_and_leaves_nothing_behind(tmp_path):
    import signal
    import time

    argv = [*SMALL, "--seeds", "64"]
    whole = tmp_path / "whole"
    assert main(["run", *argv, "--out", str(whole)]) == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "sweep", "run", *argv, "--out", str(out)]
    total = len(list((whole / "runs").glob("*.parquet")))
    for attempt in range(3):  # kill it at different moments, then let it finish
        before = len(list((out / "runs").glob("*.parquet")))
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.monotonic()
        while time.monotonic() - start < 60 and worker.poll() is None:
            if len(list((out / "runs").glob("*.parquet"))) >= before + 1 + attempt:
                break
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        # The kill happened: the worker died of it, before writing every shard.
        assert worker.wait() == -signal.SIGKILL
        assert len(list((out / "runs").glob("*.parquet"))) < total
    assert main(["run", *argv, "--out", str(out)]) == 0
    same_rows(rows(out), rows(whole))
    assert not list((out / "_tmp").iterdir())
    assert not (out / "_damaged").exists()
