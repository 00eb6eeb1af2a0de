"""Where everything of a sweep lives, so that every Parquet reader sees exactly the runs.

    results/<sweep>/
      runs/                one Parquet file per shard and nothing else (polars, DuckDB,
                           pyarrow and pandas read this folder or its *.parquet)
      _manifest.json       the config, its identity, versions and the shard list
      _minima.parquet      the catalogue of distinct points (with their proofs, if any)
      _certified.parquet   per run, whether its end point is proved (python -m sweep certify)
      _status/             shard markers (running, failed) and records of written shards
      _report/ _replay/    reports and replays
      _slurm/              cluster logs
      _damaged/            files found damaged, truncated or foreign, moved aside
      _tmp/                writers' temporary files (renamed into place when complete)

Names starting with "_" are skipped by pandas and pyarrow, so `pandas.read_parquet` of the
sweep folder itself also gives exactly the runs. Folders written by earlier versions
(shards beside `_manifest.json`) are moved to this layout by `migrate`.
"""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

RUNS = "runs"
MANIFEST = "_manifest.json"
MINIMA = "_minima.parquet"
CERTIFIED = "_certified.parquet"  # per run: its end point lies in a proven box
STATUS = "_status"
REPORT = "_report"
REPLAY = "_replay"
SLURM = "_slurm"
DAMAGED = "_damaged"
TMP = "_tmp"

# A temporary file of another host is taken for abandoned after this long.
STALE_SECONDS = 24 * 3600


def runs(root: str | Path) -> Path:
    return Path(root) / RUNS


def is_legacy(root: str | Path) -> bool:
    """A folder of an earlier version: shards beside the manifest, no runs/ folder."""
    root = Path(root)
    return (root / MANIFEST).is_file() and bool(_old_shards(root))


def _old_shards(root: Path) -> list[Path]:
    """Shard files beside the manifest (the sweep's own tables have names starting "_")."""
    return [path for path in sorted(root.glob("*.parquet")) if not path.name.startswith("_")]


def migrate(root: str | Path) -> int:
    """Move a folder of an earlier version to this layout (renames only, nothing is
    rewritten); returns the number of shards moved. Safe to repeat."""
    root = Path(root)
    target = runs(root)
    target.mkdir(exist_ok=True)
    moved = 0
    for path in _old_shards(root):
        os.replace(path, target / path.name)
        moved += 1
    for path in root.glob(".*.tmp"):  # the old writers' temporary files
        path.unlink(missing_ok=True)
    return moved


def temporary(root: str | Path, path: Path) -> Path:
    """A temporary name for `path`, in the sweep folder's _tmp/ (the same filesystem, so
    the final rename is atomic), naming its writer so that abandoned ones can be told."""
    tmp = Path(root) / TMP
    tmp.mkdir(exist_ok=True)
    return tmp / f"{path.name}.{_host()}.{os.getpid()}.{time.monotonic_ns()}.tmp"


def write_atomic(
    root: str | Path, path: Path, write: Callable[[Path], object], before_rename=None
) -> None:
    """Call write(tmp), then rename tmp to path (the same filesystem, so atomic); a
    `before_rename(tmp)` runs when the file is complete (a shard's record)."""
    tmp = temporary(root, path)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _host() -> str:
    """This host's name without dots, so that a temporary file's name splits cleanly."""
    return socket.gethostname().replace(".", "_")


def _abandoned(path: Path, now: float) -> bool:
    try:
        _, host, pid, _, _ = path.name.rsplit(".", 4)
        pid = int(pid)
    except ValueError:
        return True  # not one of ours
    if host != _host():
        return now - path.stat().st_mtime > STALE_SECONDS
    try:
        os.kill(pid, 0)  # still running (its write is in flight), or gone
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def remove_stray_temporaries(root: str | Path) -> list[Path]:
    """Delete the temporary files of writers that are gone (killed mid-write)."""
    folder = Path(root) / TMP
    now = time.time()
    removed = []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if _abandoned(path, now):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
