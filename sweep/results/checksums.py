"""Shards that check themselves: a record of every written shard (rows, bytes, SHA-256),
and a check that names, and moves aside, any file of the runs folder that does not match.

A shard file is written to a temporary name, its record is written, and then the file is
renamed into place, so a shard in place always has its record. A file without one (a
folder of an earlier version) is accepted if it reads as the shard it is named after, and
its record is written then. Damaged, truncated and foreign files go to `_damaged/`, never
deleted (they may be wanted), and the shard is then pending: the next run trains it again.
"""

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from . import layout

RECORD = ".done"  # _status/<shard>.done


def digest(path: Path, rows: int) -> dict:
    """The record of a shard file: its rows, size and SHA-256."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def record_path(root: Path, name: str) -> Path:
    return Path(root) / layout.STATUS / f"{name}{RECORD}"


def write_record(root: Path, name: str, record: dict) -> None:
    path = record_path(root, name)
    path.parent.mkdir(exist_ok=True)
    layout.write_atomic(root, path, lambda tmp: tmp.write_text(json.dumps(record)))


def _read_record(root: Path, name: str) -> dict | None:
    try:
        return json.loads(record_path(root, name).read_text())
    except (OSError, ValueError):
        return None


def _fault(path: Path, name: str, rows: dict, root: Path) -> str | None:
    """Why a file of the runs folder is not the shard it should be; None if it is."""
    if path.suffix != ".parquet" or name not in rows:
        return "not a shard of this sweep"
    record = _read_record(root, name)
    if record is not None:
        if path.stat().st_size != record["bytes"]:
            return f"{path.stat().st_size} bytes, {record['bytes']} written: truncated or damaged"
        if digest(path, record["rows"])["sha256"] != record["sha256"]:
            return "its checksum differs from the one written: damaged"
        return None
    try:  # no record (an earlier version wrote it): it must read as its shard
        found = pq.read_metadata(path).num_rows
    except Exception as error:  # any reader error means the file is unusable
        return f"unreadable ({type(error).__name__}): truncated or damaged"
    if found != rows[name]:
        return f"{found} rows, the shard has {rows[name]}"
    write_record(root, name, digest(path, found))
    return None


def check(
    root: str | Path, rows: dict[str, int], move: bool = True, log: Callable[[str], None] = print
) -> list[Path]:
    """Check every file of the runs folder against the shards of the sweep (`rows`: shard
    name -> its run count). Each bad file gets one line in `log` and, with `move`, goes to
    `_damaged/`. Returns the good shard files."""
    root = Path(root)
    good = []
    folder = layout.runs(root)
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        name = path.name.removesuffix(".parquet")
        fault = _fault(path, name, rows, root) if path.is_file() else "not a file"
        if fault is None:
            good.append(path)
            continue
        if move:
            aside = root / layout.DAMAGED
            aside.mkdir(exist_ok=True)
            target = aside / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(path, target)
            record_path(root, name).unlink(missing_ok=True)
            log(f"{path}: {fault}; moved to {target}, the shard will be trained again")
        else:
            log(f"{path}: {fault}; skipped")
    return good
