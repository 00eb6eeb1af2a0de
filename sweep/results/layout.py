"""Where everything of a sweep lives, so that every Parquet reader sees exactly the runs.

    results/<sweep>/
      runs/                one Parquet file per shard and nothing else (polars, DuckDB,
                           pyarrow and pandas read this folder or its *.parquet)
      _manifest.json       the config, its identity, versions and the shard list
      _catalogue.parquet   the catalogue of distinct points: spurious minima, saddles and
                           each cell's global minima (with their proofs, if any)
      _certified.parquet   per run, whether its end point is proved (sweep certify)
      _status/             shard markers (running, failed) and records of written shards
      _report/ _replay/    reports and replays
      _slurm/              cluster logs
      _damaged/            files found damaged, truncated or foreign, moved aside
      _tmp/                writers' temporary files (renamed into place when complete)

Names starting with "_" are skipped by pandas and pyarrow, so `pandas.read_parquet` of the
sweep folder itself also gives exactly the runs. Folders written by earlier versions
(shards beside `_manifest.json`, the catalogue as `_minima.parquet`) are moved to this
layout by `migrate`.
"""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

RUNS = "runs"
MANIFEST = "_manifest.json"
CATALOGUE = "_catalogue.parquet"
OLD_CATALOGUE = "_minima.parquet"  # its name in earlier versions
CERTIFIED = "_certified.parquet"  # per run: its end point lies in a proven box
STATUS = "_status"
REPORT = "_report"
REPLAY = "_replay"
SLURM = "_slurm"
DAMAGED = "_damaged"
TMP = "_tmp"
CRITICAL = "critical"  # `sweep critical`: one table per k and n

# A temporary file of another host is taken for abandoned after this long.
STALE_SECONDS = 24 * 3600


def runs(root: str | Path) -> Path:
    return Path(root) / RUNS


def shard_file(root: str | Path, name: str) -> Path:
    """Where the shard `name` (`config.Shard.name`) of a sweep folder is written."""
    return runs(root) / f"{name}.parquet"


def shard_done(root: str | Path, name: str) -> bool:
    """A shard is done when its file is in runs/: files appear there whole, by an atomic
    rename (`write_atomic`), so a shard is never half written. A file found damaged is
    moved aside (`checksums.check`), and its shard is pending again."""
    return shard_file(root, name).exists()


def is_legacy(root: str | Path) -> bool:
    """A folder of an earlier version: shards beside the manifest, or the catalogue under
    its old name."""
    root = Path(root)
    old_catalogue = (root / OLD_CATALOGUE).is_file() and not (root / CATALOGUE).exists()
    return (root / MANIFEST).is_file() and (bool(_old_shards(root)) or old_catalogue)


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
    if (root / OLD_CATALOGUE).is_file() and not (root / CATALOGUE).exists():
        os.replace(root / OLD_CATALOGUE, root / CATALOGUE)
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
    return not process_alive(pid)  # else its write is in flight


def process_alive(pid: int) -> bool:
    """Whether a process of this host is still running (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
