"""A sweep's results folder as a resumable store: opening it (its manifest, `manifest.py`),
atomic shard writes with their records, and what is checked and cleaned up on opening.

Every file is written under a temporary name in `_tmp/` and renamed into place, so a
reader (or a resume) never sees a partial file; a shard's record (rows, bytes, SHA-256)
is written before its rename (`checksums.py`). Opening a store migrates a folder of an
earlier version, removes the temporary files of killed writers and moves damaged or
foreign shard files aside, so that they are trained again.
"""

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Config, ConfigError
from ..config.shards import Shard
from . import checksums, layout
from .layout import CATALOGUE, MANIFEST
from .manifest import git_commit, identity_difference, shard_rows, versions, write_manifest
from .runs_table import sweep_root, table_schema


def describe(error: OSError) -> str:
    """The cause of an OSError in a few words ("no space left on device"), also where a
    library reports the errno only inside its message (pyarrow does)."""
    number = error.errno
    if number is None:
        found = re.search(r"\[errno (\d+)\]", str(error), re.IGNORECASE)
        number = int(found.group(1)) if found else None
    return (os.strerror(number) if number else error.strerror or str(error)).lower()


class StorageError(Exception):
    """The results folder cannot take more: a full disk, lost permissions, a read-only
    mount. The message is one line for the user."""

    def __init__(self, root: str | Path, error: OSError):
        reason = describe(error)
        super().__init__(
            f"{root}: cannot write results ({reason}); every finished shard is kept: fix the "
            "cause and run the same command to resume"
        )
        self.error = error


class ResultStore:
    """One sweep's results folder."""

    def __init__(
        self,
        root: str | Path,
        config: Config,
        shards: list[Shard],
        fresh: bool = False,
        log: Callable[[str], None] = print,
    ):
        self.root = Path(root)
        self.config = config
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError("--out", "a folder for the results", f"{root} (a file)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                "--out", "a folder that can be created", f"{root} ({error.strerror})"
            ) from None
        try:  # an actual write: permissions, read-only mounts and quotas all show here
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as error:
            raise ConfigError("--out", "a writable folder", f"{root} ({error.strerror})") from None

        sweep_root(self.root)  # a folder of an earlier version moves to the current layout
        manifest_path = self.root / MANIFEST
        if manifest_path.exists():
            difference = identity_difference(self.root, config)
            if difference and not fresh:
                key, was, now = difference
                raise ConfigError(
                    "--out",
                    None,
                    None,
                    detail=f"--out: {root} holds a sweep with {key} = {json.dumps(was)}, this "
                    f"config has {json.dumps(now)}; pass --fresh to replace it or another --out",
                )
            if fresh:
                self._clear()
        elif fresh or self._holds_parquet():
            if self._holds_parquet() and not fresh:
                raise ConfigError(
                    "--out", "an empty folder or a sweep folder (with _manifest.json)", str(root)
                )
            self._clear()

        self.schema = table_schema(config)
        self.metadata = {
            b"sweep.config": json.dumps(config.to_dict(), sort_keys=True).encode(),
            b"sweep.versions": json.dumps(versions(), sort_keys=True).encode(),
            b"sweep.git_commit": git_commit().encode(),
        }
        write_manifest(self.root, config, shards)
        for path in layout.remove_stray_temporaries(self.root):
            log(f"{self.root}: removed {path.name}, left by a writer that was killed")
        rows = {s.name: len(s.runs) for s in shards}
        checksums.check(self.root, rows, move=True, log=log)

    def _holds_parquet(self) -> bool:
        return any(self.root.glob("*.parquet")) or any(layout.runs(self.root).glob("*.parquet"))

    def _clear(self):
        for path in [*self.root.glob("*.parquet"), *layout.runs(self.root).glob("*.parquet")]:
            path.unlink()
        for folder in (layout.TMP, layout.STATUS):
            shutil.rmtree(self.root / folder, ignore_errors=True)
        for name in (MANIFEST, CATALOGUE, layout.CERTIFIED):
            (self.root / name).unlink(missing_ok=True)

    def path(self, shard: Shard) -> Path:
        return layout.shard_file(self.root, shard.name)

    def done(self, shard: Shard) -> bool:
        return layout.shard_done(self.root, shard.name)

    def write_teacher(self, cell, teacher) -> None:
        """Keep a cell's teacher matrix (k, d) beside its runs, where it is not V = [I_k 0]
        (a random or read teacher), as `teacher_k=K_d=D.npy`: once per cell."""
        if self.config.problem.teacher in ("orthonormal", "targets") or teacher is None:
            return
        path = self.root / teacher_file(cell)
        if not path.exists():
            layout.write_atomic(self.root, path, lambda tmp: _save_array(tmp, teacher))

    def write(self, shard: Shard, columns: dict) -> None:
        """Write one shard's rows (a dict of equal-length columns) atomically."""
        table = pa.Table.from_pydict(columns, schema=self.schema)
        table = table.replace_schema_metadata(self.metadata)
        path = self.path(shard)
        path.parent.mkdir(exist_ok=True)

        def record(tmp):
            checksums.write_record(self.root, shard.name, checksums.digest(tmp, table.num_rows))

        layout.write_atomic(self.root, path, lambda tmp: pq.write_table(table, tmp), record)


def _save_array(path, array) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(array))


def teacher_file(cell) -> str:
    """The name of a cell's teacher matrix in the sweep folder."""
    return f"teacher_k={cell.k}_d={cell.d}.npy"


def write_table(root: str | Path, name: str, frame: pd.DataFrame) -> None:
    """Write a table of the sweep folder (`_`-named, beside runs/) atomically."""
    path = Path(root) / name
    layout.write_atomic(Path(root), path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_catalogue(root: str | Path, frame: pd.DataFrame) -> None:
    """Write the catalogue of distinct points beside the runs (atomically). A catalogue
    without proofs drops the runs' verdicts too: they refer to proofs no longer there."""
    if "certified" not in frame.columns:
        (Path(root) / layout.CERTIFIED).unlink(missing_ok=True)
    path = Path(root) / CATALOGUE
    layout.write_atomic(Path(root), path, lambda tmp: frame.to_parquet(tmp, index=False))


def check_folder(root: str | Path, log: Callable[[str], None] = print) -> None:
    """Check the shard files of a sweep folder; damaged, truncated or foreign ones are
    named in `log` and moved aside, so the next run trains their shards again."""
    root = sweep_root(root)
    checksums.check(root, shard_rows(root), move=True, log=log)
