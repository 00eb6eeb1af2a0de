"""The runs table: its schema, the rows of one shard, and loading a sweep's runs.

The folder layout is in `layout.py`, writing and resuming in `store.py`.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from . import integrity, layout
from .config import Config, ConfigError
from .layout import MANIFEST, MINIMA
from .outcomes import Classified, Finished, StopReason
from .plan import Shard

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
        ("newton_steps", pa.int64()),  # Newton iterations after them (0: none)
        # Steps plain GD takes to stop.grad_tol: `steps`, plus the linear rate's prediction
        # for a run finished in the basin (stop_reason "basin"); null where unknown.
        ("predicted_steps", pa.int64()),
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
        # Networks on data (else null): (neuron, point) pairs on a kink at the end point;
        # the stationarity margin (> 0 strictly stationary, null without kinks); SGD's
        # own end loss before the deterministic finish; why a fallback decided the status.
        ("kinks", pa.int64()),
        ("stationarity_margin", pa.float64()),
        ("sgd_loss", pa.float64()),
        ("fallback_reason", pa.string()),
    ]
)


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
        "predicted_steps": [_optional(None if p < 0 else p) for p in ends.predicted_steps[order]],
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
        **{
            name: repeat(None) if getattr(found, name) is None else column(getattr(found, name))
            for name in ("kinks", "stationarity_margin", "sgd_loss", "fallback_reason")
        },
    }


def _optional(value: object) -> object:
    """A column entry: None for missing or NaN, a plain Python value otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


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


def read_manifest(root: str | Path) -> dict:
    """A sweep folder's manifest; a damaged one is a one-line error saying what to do."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ConfigError(
            "SWEEP", None, None,
            detail=f"{path} is damaged: restore it, or run the sweep again with --fresh",
        ) from None  # fmt: skip


def shard_rows(root: str | Path) -> dict[str, int]:
    """Shard name -> its number of runs, from a sweep folder's manifest."""
    manifest = read_manifest(root)
    return {s["file"].removesuffix(".parquet"): s["stop"] - s["start"] for s in manifest["shards"]}


def sweep_root(path: str | Path) -> Path:
    """The sweep folder of `path` (the folder itself, or its runs/ folder), in the current
    layout: a folder of an earlier version is migrated, or a one-line error says how."""
    path = Path(path)
    if path.name == layout.RUNS and (path.parent / MANIFEST).is_file():
        path = path.parent
    if layout.is_legacy(path):
        try:
            moved = layout.migrate(path)
        except OSError as error:
            raise ConfigError(
                "SWEEP", None, None,
                detail=f"{path} was written by an earlier version of sweep and cannot be "
                f"moved to the current layout here ({error.strerror}); run "
                f"`python -m sweep migrate {path}` where it is writable",
            ) from None  # fmt: skip
        print(f"{path}: moved {moved} shards to {path / layout.RUNS} (current layout)",
              file=sys.stderr)  # fmt: skip
    return path


def load(
    path: str | Path, table: str = "runs", columns: list[str] | None = None, **filters: object
) -> pd.DataFrame:
    """The runs of a sweep folder as a DataFrame, optionally filtered.

    Example: ``load("results/default", k=6, status="spurious")``; a list value keeps any of
    its values. `columns` reads only those runs columns (with k, n, run and the filtered
    ones), which keeps a large sweep's memory small. ``table="minima"`` loads the
    catalogue of distinct minima instead (all its columns). Shard
    files that are damaged, truncated or foreign are left out, one line each on stderr
    (`python -m sweep status` moves them aside; the next run trains them again).
    """
    if table not in ("runs", "minima"):
        raise ValueError(f"table: expected 'runs' or 'minima', got {table!r}")
    root = sweep_root(path)
    if table == "minima":
        try:
            frame = pd.read_parquet(root / MINIMA)
        except (OSError, ValueError) as error:  # pyarrow's errors for a damaged file
            raise ConfigError(
                "SWEEP", None, None,
                detail=f"{root / MINIMA} is damaged ({type(error).__name__}); the same "
                "`python -m sweep run` command rebuilds it",
            ) from None  # fmt: skip
    else:
        if columns is not None:
            unknown = sorted(set(columns) - set(SCHEMA.names) - {"certified"})
            if unknown:
                raise KeyError(f"no column {unknown[0]!r} in {path}")
            # `certified` is not a shard column: it is joined in after the read.
            wanted = [*columns, "k", "n", "run", *filters]
            columns = [c for c in dict.fromkeys(wanted) if c in SCHEMA.names]
        if (root / MANIFEST).is_file():
            good = integrity.check(root, shard_rows(root), move=False, log=_warn)
            frame = _with_certified(_read(good, columns), root)
        else:  # a plain folder of Parquet files
            frame = pd.read_parquet(root, columns=columns)
    for column, value in filters.items():
        if column not in frame.columns:
            raise KeyError(f"no column {column!r} in {path}")
        if isinstance(value, (list, tuple, set, range)):
            frame = frame[frame[column].isin(list(value))]
        else:
            frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)


def _with_certified(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The runs with their `certified` column, once `python -m sweep certify` has run."""
    path = root / layout.CERTIFIED
    if not path.is_file():
        return frame
    proved = pd.read_parquet(path, columns=["k", "n", "run", "certified"])
    frame = frame.merge(proved, on=["k", "n", "run"], how="left")
    return frame.assign(certified=frame["certified"].astype("boolean").fillna(False).astype(bool))


def _read(files: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    if not files:
        return SCHEMA.empty_table().select(columns or SCHEMA.names).to_pandas()
    dataset = ds.dataset([str(f) for f in files], schema=SCHEMA, format="parquet")
    return dataset.to_table(columns=columns).to_pandas()


def _warn(line: str) -> None:
    print(line, file=sys.stderr)
