"""The Parquet results dataset: one file per shard, a manifest, resume and loading.

Layout of ``results/<sweep>/``:
  _manifest.json           the config, its identity, versions and the shard list
  <cell>-r<start>-<stop>.parquet   one file per finished shard, one row per run

Files are written under a hidden temporary name in the same folder and renamed into place,
so a reader (or a resume) never sees a partial file. Names starting with "_" or "." are
skipped by `pandas.read_parquet(folder)`, which therefore reads exactly the runs.
"""

import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .config import Config, ConfigError
from .outcomes import Classified, Finished, StopReason
from .plan import Shard

MANIFEST = "_manifest.json"
MINIMA = "_minima.parquet"  # the catalogue of distinct minima (analysis.catalogue)

SCHEMA = pa.schema(
    [
        ("sweep", pa.string()),
        ("problem", pa.string()),
        ("k", pa.int64()),
        ("n", pa.int64()),
        ("d", pa.int64()),
        ("run", pa.int64()),
        ("seed", pa.int64()),
        ("init", pa.string()),
        ("init_scale", pa.float64()),
        ("optimizer", pa.string()),
        ("step_size", pa.float64()),
        ("steps", pa.int64()),  # gradient steps
        ("newton_steps", pa.int64()),  # Newton polish iterations after them (0: none)
        ("stop_reason", pa.string()),
        ("status", pa.string()),
        ("loss", pa.float64()),
        ("grad_norm", pa.float64()),
        ("min_eig", pa.float64()),  # null where the run did not converge
        ("decided_by", pa.string()),  # "hessian", "escape_neuron", or "" if not converged
        ("symmetry", pa.string()),  # block pattern such as "1+5", or "none"
        ("weights", pa.list_(pa.float64())),  # final W, row-major (n, d); a network's theta
        # Population loss (closed form), or loss on fresh test points (empirical problems).
        ("test_loss", pa.float64()),
        ("depth", pa.int64()),  # weight layers of the student
        ("minibatch", pa.int64()),  # SGD minibatch size (0: full batch)
        # 1-D students with biases (else null): piecewise linear regression error of the
        # data, whether a kink ever entered the data, whether the run is essentially
        # linear, max |b_i(end) - b_i(start)|.
        ("linear_loss", pa.float64()),
        ("kink_entered", pa.bool_()),  # a kink was inside the data at some point
        ("essentially_linear", pa.bool_()),
        ("bias_movement", pa.float64()),
    ]
)


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


def _write_atomic(path, write):
    """Call write(tmp_path), then rename tmp_path to path (same folder, so atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultStore:
    """One sweep's results folder."""

    def __init__(self, root: str | Path, config: Config, shards: list[Shard], fresh: bool = False):
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

        manifest_path = self.root / MANIFEST
        identity = json.loads(config.identity())
        if manifest_path.exists():
            stored = json.loads(manifest_path.read_text())
            difference = _first_difference(stored.get("identity", {}), identity)
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
        elif fresh or any(self.root.glob("*.parquet")):
            if any(self.root.glob("*.parquet")) and not fresh:
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
        _write_atomic(
            manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1))
        )

    def _clear(self):
        for path in self.root.glob("*.parquet"):
            path.unlink()
        for path in self.root.glob(".*.tmp"):
            path.unlink()
        (self.root / MANIFEST).unlink(missing_ok=True)

    def path(self, shard: Shard) -> Path:
        return self.root / f"{shard.name}.parquet"

    def done(self, shard: Shard) -> bool:
        return self.path(shard).exists()

    def write(self, shard: Shard, columns: dict) -> None:
        """Write one shard's rows (a dict of equal-length columns) atomically."""
        table = pa.Table.from_pydict(columns, schema=SCHEMA).replace_schema_metadata(self.metadata)
        _write_atomic(self.path(shard), lambda tmp: pq.write_table(table, tmp))


def rows(config: Config, shard: Shard, ends: Finished, found: Classified) -> dict[str, list]:
    """The columns of one shard's table, in SCHEMA order (runs sorted by index): the
    finished runs `ends` and their classification `found`."""
    order = np.argsort(ends.runs)
    count = len(order)
    cell = shard.cell

    def repeat(value):
        return [value] * count

    def column(values):
        return [_optional(values[i]) for i in order]

    return {
        "sweep": repeat(config.name),
        "problem": repeat(config.problem.kind),
        "k": repeat(cell.k),
        "n": repeat(cell.n),
        "d": repeat(cell.d),
        "run": np.asarray(ends.runs)[order],
        "seed": repeat(config.seed),
        "init": repeat(config.init.kind),
        "init_scale": repeat(cell.init_scale),
        "optimizer": repeat(config.optimizer.kind),
        "step_size": np.asarray(ends.step_size, float)[order],
        "steps": np.asarray(ends.steps)[order],
        "newton_steps": np.asarray(ends.newton_steps)[order],
        "stop_reason": [StopReason(int(ends.reason[i])).label for i in order],
        "status": [str(found.status[i]) for i in order],
        "loss": np.asarray(ends.loss)[order],
        "grad_norm": np.asarray(ends.grad_norm)[order],
        "min_eig": column(found.min_eig),
        "decided_by": [str(found.decided_by[i]) for i in order],
        "symmetry": [found.symmetry[i] for i in order],
        "weights": [np.asarray(ends.weights[i]).ravel() for i in order],
        "test_loss": column(found.test_loss),
        "depth": repeat(config.problem.depth),
        "minibatch": repeat(config.optimizer.batch_size),
        "linear_loss": column(found.linear_loss),
        "kink_entered": column(found.kink_entered),
        "essentially_linear": column(found.essentially_linear),
        "bias_movement": column(found.bias_movement),
    }


def _optional(value: object) -> object:
    """A column entry: None for missing or NaN, a plain Python value otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def write_minima(root: str | Path, frame: pd.DataFrame) -> None:
    """Write the catalogue of distinct minima beside the runs (atomically)."""
    path = Path(root) / MINIMA
    _write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def default_folder(name: str, k: object = None, n: object = None, seeds: object = None) -> Path:
    """results/<name>, with the k, n and seeds overrides in the name, so that different
    sweeps never collide."""
    parts = [name]
    if k is not None:
        parts.append("k" + str(k).replace("..", "-").replace(",", "_"))
    if n is not None:
        parts.append("n" + str(n).replace("..", "-").replace(",", "_").replace("*", "x"))
    if seeds is not None:
        parts.append(f"s{seeds}")
    return Path("results") / "_".join(parts)


def load(path: str | Path, table: str = "runs", **filters: object) -> pd.DataFrame:
    """The runs of a sweep folder as a DataFrame, optionally filtered.

    Example: ``load("results/default", k=6, status="spurious")``; a list value keeps any of
    its values. ``table="minima"`` loads the catalogue of distinct minima instead.
    """
    if table not in ("runs", "minima"):
        raise ValueError(f"table: expected 'runs' or 'minima', got {table!r}")
    frame = pd.read_parquet(Path(path) / MINIMA if table == "minima" else path)
    for column, value in filters.items():
        if column not in frame.columns:
            raise KeyError(f"no column {column!r} in {path}")
        if isinstance(value, (list, tuple, set, range)):
            frame = frame[frame[column].isin(list(value))]
        else:
            frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)
