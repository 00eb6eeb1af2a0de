"""Where a sweep stands: each shard done, running, failed or pending.

A shard is done when its Parquet file exists. While a worker trains a shard it keeps a
marker `_status/<shard>.running` (who and where); a shard whose worker raised gets
`_status/<shard>.failed` with the error. A running marker whose worker is gone (a
cancelled or preempted SLURM task, a killed process) counts as pending: the next
submission runs that shard again.
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd

from ..config import Config, from_dict, shard_list
from ..config.grid import axis_columns, markdown_axes, markdown_head
from . import layout
from .manifest import read_manifest

MARKERS = layout.STATUS
STATES = ("done", "running", "failed", "pending", "not needed")
# States of a finished sweep: "not needed" are the waves an adaptive sweep did not train.
SETTLED = ("done", "not needed")


def _marker(root, name, kind):
    return Path(root) / MARKERS / f"{name}.{kind}"


def _owner():
    """Who is training: the SLURM job (array task) if any, else this process."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if job:
        job = f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    else:
        job = os.environ.get("SLURM_JOB_ID")
    return {"host": socket.gethostname(), "pid": os.getpid(), "job": job, "since": time.time()}


def mark_running(root: str | Path, names: list[str]) -> None:
    folder = Path(root) / MARKERS
    folder.mkdir(exist_ok=True)
    owner = json.dumps(_owner())
    for name in names:
        _marker(root, name, "failed").unlink(missing_ok=True)
        _marker(root, name, "running").write_text(owner)


def unmark(root: str | Path, name: str) -> None:
    """Drop a shard's markers: it is then done if its file exists, else pending."""
    _marker(root, name, "running").unlink(missing_ok=True)
    _marker(root, name, "failed").unlink(missing_ok=True)
    try:  # a finished sweep keeps no trace of its workers
        (Path(root) / MARKERS).rmdir()
    except OSError:
        pass


def mark_failed(root: str | Path, names: list[str], error: BaseException) -> None:
    line = f"{type(error).__name__}: {error}".splitlines()[0]
    for name in names:
        _marker(root, name, "running").unlink(missing_ok=True)
        _marker(root, name, "failed").write_text(json.dumps({**_owner(), "error": line}))


def clear(root: str | Path) -> None:
    shutil.rmtree(Path(root) / MARKERS, ignore_errors=True)


def _alive(owner, live_jobs):
    if owner.get("job"):
        return live_jobs is None or owner["job"] in live_jobs
    if owner.get("host") != socket.gethostname():
        return True  # another machine's process: cannot tell, trust the marker
    return layout.process_alive(owner["pid"])


def live_slurm_jobs() -> set[str] | None:
    """Ids ("123" and "123_4") of SLURM jobs still queued or running; None if unknown."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %A"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return {word for line in out.stdout.splitlines() for word in line.split()}


def sweep_config(root: str | Path) -> Config:
    """The config a sweep folder was made with (its manifest's)."""
    return from_dict(read_manifest(Path(root))["config"])


def shard_states(root: str | Path, unneeded: set[str] = frozenset()) -> pd.DataFrame:
    """One row per shard of the sweep in `root`: k, n, d, start, stop, runs, state, detail.
    `unneeded`: the shards an adaptive sweep did not need (`commands.waves`)."""
    root = Path(root)
    manifest = read_manifest(root)
    axes = {s.name: dict(s.cell.axes) for s in shard_list(from_dict(manifest["config"]))}
    live = None
    rows = []
    for shard in manifest["shards"]:
        name = shard["file"].removesuffix(".parquet")
        state, detail = "pending", ""
        if layout.shard_done(root, name):
            state = "done"
        elif name in unneeded:
            state, detail = "not needed", "the cell's interval was tight before it"
        elif _marker(root, name, "failed").exists():
            state, detail = "failed", json.loads(_marker(root, name, "failed").read_text())["error"]
        elif _marker(root, name, "running").exists():
            owner = json.loads(_marker(root, name, "running").read_text())
            if owner.get("job") and live is None:
                live = live_slurm_jobs()
            if _alive(owner, live):
                state, detail = "running", owner.get("job") or f"pid {owner['pid']}"
            else:
                detail = "interrupted"
        rows.append({**shard, **axes.get(name, {}), "name": name,
                     "runs": shard["stop"] - shard["start"], "state": state,
                     "detail": detail})  # fmt: skip
    return pd.DataFrame(rows)


def format_status(frame: pd.DataFrame) -> str:
    """A per-cell table of shard states and runs done, then the failed shards' errors."""
    axes = axis_columns(frame.columns)
    columns = " shards | done | running | failed | pending | not needed | runs done |"
    lines = markdown_head(axes, columns)
    cells = frame["name"].str.rsplit("-r", n=1).str[0]  # the cell's label, axes included
    for (k, n, _), cell in frame.groupby(["k", "n", cells], sort=True):
        counts = cell["state"].value_counts()
        runs_done = int(cell.loc[cell.state == "done", "runs"].sum())
        values = markdown_axes(cell.iloc[0], axes)
        lines.append(
            f"| {k:2d} | {n:2d} |{values} {len(cell):6d} | {counts.get('done', 0):4d} | "
            f"{counts.get('running', 0):7d} | {counts.get('failed', 0):6d} | "
            f"{counts.get('pending', 0):7d} | {counts.get('not needed', 0):10d} | "
            f"{runs_done:>4d}/{int(cell.runs.sum()):<4d} |"
        )
    counts = frame["state"].value_counts()
    lines.append(
        "total: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATES)
        + f" of {len(frame)} shards; {int(frame.loc[frame.state == 'done', 'runs'].sum())} "
        f"of {int(frame.runs.sum())} runs done"
    )  # fmt: skip
    for row in frame[frame.state == "failed"].itertuples():
        lines.append(f"failed {row.name}: {row.detail}")
    return "\n".join(lines)
