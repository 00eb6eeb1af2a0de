"""A sweep's results folder as a resumable store: the manifest, atomic shard writes with
their records, and what is checked and cleaned up when a sweep opens it.

Every file is written under a temporary name in `_tmp/` and renamed into place, so a
reader (or a resume) never sees a partial file; a shard's record (rows, bytes, SHA-256)
is written before its rename (`integrity.py`). Opening a store migrates a folder of an
earlier version, removes the temporary files of killed writers and moves damaged or
foreign shard files aside, so that they are trained again.
"""

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import integrity, layout
from .config import Config, ConfigError
from .layout import MANIFEST, MINIMA
from .plan import Shard
from .results import SCHEMA, read_manifest, shard_rows, sweep_root


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


def versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    found = {"python": platform.python_version()}
    for name in ("sweep", "jax", "jaxlib", "optax", "numpy", "pyarrow"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def git_commit() -> str:
    """The commit of the source tree sweep runs from ("unknown" outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def _first_difference(old, new):
    old_flat, new_flat = _flatten(old), _flatten(new)
    for key in sorted(set(old_flat) | set(new_flat)):
        if old_flat.get(key) != new_flat.get(key):
            return key, old_flat.get(key), new_flat.get(key)
    return None


def _with_defaults(stored: dict) -> dict:
    """A stored identity completed with the schema's defaults: a field added to the schema
    since a folder was written takes its default there, which changes no result."""

    def merge(base, over):
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}

    return merge(json.loads(Config().identity()), stored)


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
        identity = json.loads(config.identity())
        if manifest_path.exists():
            stored = read_manifest(self.root)
            difference = _first_difference(_with_defaults(stored.get("identity", {})), identity)
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

        self.metadata = {
            b"sweep.config": json.dumps(config.to_dict(), sort_keys=True).encode(),
            b"sweep.versions": json.dumps(versions(), sort_keys=True).encode(),
            b"sweep.git_commit": git_commit().encode(),
        }
        manifest = {
            "sweep": config.name,
            "identity": identity,
            "config": config.to_raw(),
            "versions": versions(),
            "git_commit": git_commit(),
            "shards": [
                {
                    "file": f"{s.name}.parquet",
                    "k": s.cell.k,
                    "n": s.cell.n,
                    "d": s.cell.d,
                    "start": s.start,
                    "stop": s.stop,
                }
                for s in shards
            ],
        }
        layout.write_atomic(
            self.root,
            manifest_path,
            lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)),
        )
        for path in layout.remove_stray_temporaries(self.root):
            log(f"{self.root}: removed {path.name}, left by a writer that was killed")
        rows = {s.name: len(s.runs) for s in shards}
        integrity.check(self.root, rows, move=True, log=log)

    def _holds_parquet(self) -> bool:
        return any(self.root.glob("*.parquet")) or any(layout.runs(self.root).glob("*.parquet"))

    def _clear(self):
        for path in [*self.root.glob("*.parquet"), *layout.runs(self.root).glob("*.parquet")]:
            path.unlink()
        for folder in (layout.TMP, layout.STATUS):
            shutil.rmtree(self.root / folder, ignore_errors=True)
        for name in (MANIFEST, MINIMA, layout.CERTIFIED):
            (self.root / name).unlink(missing_ok=True)

    def path(self, shard: Shard) -> Path:
        return layout.runs(self.root) / f"{shard.name}.parquet"

    def done(self, shard: Shard) -> bool:
        return self.path(shard).exists()

    def write(self, shard: Shard, columns: dict) -> None:
        """Write one shard's rows (a dict of equal-length columns) atomically."""
        table = pa.Table.from_pydict(columns, schema=SCHEMA).replace_schema_metadata(self.metadata)
        path = self.path(shard)
        path.parent.mkdir(exist_ok=True)

        def record(tmp):
            integrity.write_record(self.root, shard.name, integrity.digest(tmp, table.num_rows))

        layout.write_atomic(self.root, path, lambda tmp: pq.write_table(table, tmp), record)


def write_table(root: str | Path, name: str, frame: pd.DataFrame) -> None:
    """Write a table of the sweep folder (`_`-named, beside runs/) atomically."""
    path = Path(root) / name
    layout.write_atomic(Path(root), path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_minima(root: str | Path, frame: pd.DataFrame) -> None:
    """Write the catalogue of distinct points beside the runs (atomically). A catalogue
    without proofs drops the runs' verdicts too: they refer to proofs no longer there."""
    if "certified" not in frame.columns:
        (Path(root) / layout.CERTIFIED).unlink(missing_ok=True)
    path = Path(root) / MINIMA
    layout.write_atomic(Path(root), path, lambda tmp: frame.to_parquet(tmp, index=False))


def check_folder(root: str | Path, log: Callable[[str], None] = print) -> None:
    """Check the shard files of a sweep folder; damaged, truncated or foreign ones are
    named in `log` and moved aside, so the next run trains their shards again."""
    root = sweep_root(root)
    integrity.check(root, shard_rows(root), move=True, log=log)
