"""The runs table: its schema, the rows of one shard, and loading a sweep's runs.

The folder layout is in `layout.py`, writing and resuming in `store.py`.
"""

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..config import Config, ConfigError, from_dict
from ..config.grid import axis_columns
from ..config.shards import Shard
from ..outcomes import STATUSES, Classified, Finished, StopReason
from . import checksums, layout
from .layout import CATALOGUE, CERTIFIED, MANIFEST
from .manifest import read_manifest, shard_rows

# Every column of the runs table: its Parquet type and what it holds (the docs' column
# reference is generated from this).
COLUMNS = {
    "sweep": (pa.string(), "the config's name"),
    "problem": (pa.string(), "the problem kind (problem.kind)"),
    "k": (pa.int64(), "teacher neurons"),
    "n": (pa.int64(), "student neurons (first hidden layer)"),
    "d": (pa.int64(), "input dimension"),
    "run": (
        pa.int64(),
        "the run's index within its cell; with (seed, k, n, d) it fixes the run's key",
    ),
    "seed": (pa.int64(), "the sweep seed"),
    "init": (pa.string(), "init.kind"),
    "init_scale": (pa.float64(), "the standard deviation of the initial weights"),
    "optimizer": (pa.string(), "optimizer.kind"),
    "step_size": (pa.float64(), 'the run\'s own step (it differs by run with step_unit = "ntk")'),
    "steps": (pa.int64(), "gradient updates applied (gradient flow: solver step attempts)"),
    "newton_steps": (pa.int64(), "Newton iterations after them (0: none)"),
    "predicted_steps": (
        pa.int64(),
        "the steps plain gradient descent takes to stop.grad_tol: `steps` for a run that "
        "got there itself, plus the linear rate's prediction for one the basin finish ended; "
        "null where unknown",
    ),
    "stop_reason": (pa.string(), "why the run stopped (`StopReason`, below)"),
    "status": (pa.string(), "where the run landed (`Status`, below)"),
    "loss": (
        pa.float64(),
        "the objective at the end point: F for the closed form, else the empirical loss",
    ),
    "grad_norm": (pa.float64(), "the gradient's Frobenius norm at the end point"),
    "min_eig": (
        pa.float64(),
        "the Hessian's smallest eigenvalue there; null where the run did not converge "
        "or sits on a kink",
    ),
    "decided_by": (pa.string(), "which test settled the status (`DecidedBy`, below)"),
    "symmetry": (pa.string(), "the point's block pattern, such as `1+5`, or `none`"),
    "weights": (
        pa.list_(pa.float64()),
        "the end point: W row-major (n, d) for the closed form ((n, d + 1) with trained "
        "output weights: each row, then its output weight), a network's parameter vector "
        "on data",
    ),
    "test_loss": (
        pa.float64(),
        "the population loss where it has a closed form, else the loss on fresh test points",
    ),
    "depth": (pa.int64(), "weight layers of the student"),
    "minibatch": (pa.int64(), "the SGD minibatch size (0: full batch)"),
    "linear_loss": (
        pa.float64(),
        "1-D students with biases: the error of the best affine fit on each half-line (else null)",
    ),
    "kink_entered": (
        pa.bool_(),
        "1-D students with biases: a kink was inside the data at some point",
    ),
    "essentially_linear": (
        pa.bool_(),
        "1-D students with biases: no kink ever entered the data and the loss is within "
        "classify.linear_tol of linear_loss",
    ),
    "bias_movement": (pa.float64(), "1-D students with biases: max_i |b_i(end) - b_i(start)|"),
    "kinks": (pa.int64(), "networks on data: (neuron, point) pairs on a kink at the end point"),
    "stationarity_margin": (
        pa.float64(),
        "networks on data: > 0 when strictly stationary on its kinks; null without kinks",
    ),
    "sgd_loss": (
        pa.float64(),
        "networks on data: SGD's own end loss, before the deterministic finish",
    ),
    "fallback_reason": (pa.string(), "why no check settled an `undecided` point"),
    "flow_time": (pa.float64(), "gradient flow: the flow time t its integration reached"),
    "solver_accepted": (pa.int64(), "gradient flow: accepted solver steps (of `steps` attempts)"),
    "solver_rejected": (pa.int64(), "gradient flow: rejected solver steps"),
    "solver_evaluations": (
        pa.int64(),
        "gradient flow: evaluations of -grad F by the explicit solver; null where the "
        "implicit solver ran (its stages' chord iterations are not reported)",
    ),
}
SCHEMA = pa.schema([(name, kind) for name, (kind, _) in COLUMNS.items()])
_AXIS_TYPES = {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_(),
               tuple: pa.list_(pa.float64())}  # fmt: skip


def table_schema(config: Config) -> pa.Schema:
    """The runs table of a sweep: SCHEMA, then one column per `[grid]` axis, named by its
    field ("optimizer.step_size") and typed as its values."""
    axes = [pa.field(name, _AXIS_TYPES[type(values[0])]) for name, values in config.grid]
    return pa.schema([*SCHEMA, *axes])


def rows(config: Config, shard: Shard, ends: Finished, found: Classified) -> dict[str, list]:
    """The columns of one shard's table, in `table_schema` order (runs sorted by index):
    the finished runs `ends` and their classification `found`. `config` is the cell's
    (`grid.cell_config`)."""
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
        "predicted_steps": [
            _optional(None if p < 0 or config.optimizer.flow else p)
            for p in ends.predicted_steps[order]
        ],  # fmt: skip
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
        "flow_time": column(ends.flow[:, 0]),
        "solver_accepted": column(_integers(ends.flow[:, 1])),
        "solver_rejected": column(_integers(ends.flow[:, 2])),
        "solver_evaluations": column(_integers(ends.flow[:, 3])),
        **{name: repeat(value) for name, value in cell.axes},
    }


def _integers(values: np.ndarray) -> list:
    """Whole numbers held as floats (NaN: none) as ints and None."""
    return [None if np.isnan(v) else int(v) for v in values]


def _optional(value: object) -> object:
    """A column entry: None for missing or NaN, a plain Python value otherwise."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def default_folder(
    name: str,
    k: object = None,
    n: object = None,
    seeds: object = None,
    grid: list = (),
    settings: dict | None = None,
) -> Path:
    """results/<name>, with the k, n, seeds, --grid and every other override (`settings`:
    --set, --seed, --halfwidth, ...) in the name, so that sweeps of different configs
    never share a default folder. Long lists of settings are named by a short hash."""
    parts = [name]
    if k is not None:
        parts.append("k" + str(k).replace("..", "-").replace(",", "_"))
    if n is not None:
        parts.append("n" + str(n).replace("..", "-").replace(",", "_").replace("*", "x"))
    if seeds is not None:
        parts.append(f"s{seeds}")
    for axis in grid:  # "optimizer.step_size=1/k,5/k" -> "step_size=1ok,5ok"
        parts.append(_readable(axis))
    settings = {key: settings[key] for key in sorted(settings or {})}
    named = [_readable(f"{key}={value}") for key, value in settings.items()]
    if len("_".join(named)) <= 48:
        parts += named
    else:
        text = json.dumps(settings, sort_keys=True, default=str)
        parts.append("set-" + hashlib.sha256(text.encode()).hexdigest()[:10])
    return Path("results") / "_".join(parts)


def _readable(setting: str) -> str:
    """A "section.field=value" setting as a folder name part: "field=value", safe."""
    return re.sub(r"[^\w.,=+-]", "", setting.split(".", 1)[-1].replace("/", "o"))


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
                f"`sweep migrate {path}` where it is writable",
            ) from None  # fmt: skip
        print(f"{path}: moved to the current layout ({moved} shards into {layout.RUNS}/)",
              file=sys.stderr)  # fmt: skip
    return path


def load(
    path: str | Path, table: str = "runs", columns: list[str] | None = None, **filters: object
) -> pd.DataFrame:
    """The runs of a sweep folder as a DataFrame, optionally filtered.

    Example: ``load("results/default", k=6, status="spurious")``; a list value keeps any of
    its values. `columns` reads only those runs columns (with k, n, run and the filtered
    ones), which keeps a large sweep's memory small. ``table="catalogue"`` loads the
    catalogue of distinct points instead (all its columns; "minima" is its older name);
    ``table="critical"`` the critical points `sweep critical --out path` found. Shard
    files that are damaged, truncated or foreign are left out, one line each on stderr
    (`sweep status` moves them aside; the next run trains them again).
    """
    if table not in ("runs", "catalogue", "minima", "critical"):
        raise ValueError(f"table: expected 'runs', 'catalogue' or 'critical', got {table!r}")
    if table == "critical":
        return _filtered(_critical(path), filters, path)
    root = sweep_root(path)
    manifest = (root / MANIFEST).is_file()
    if not manifest and (root / layout.CRITICAL).is_dir():
        hint = 'sweep.load(path, table="critical")'
        raise ConfigError("path", None, None, detail=f"{path}: holds the critical points of "
                          f"`sweep critical`, not runs: {hint}")  # fmt: skip
    schema = table_schema(from_dict(read_manifest(root)["config"])) if manifest else SCHEMA
    if table in ("catalogue", "minima"):
        try:
            frame = pd.read_parquet(root / CATALOGUE)
        except (OSError, ValueError) as error:  # pyarrow's errors for a damaged file
            raise ConfigError(
                "SWEEP", None, None,
                detail=f"{root / CATALOGUE} is damaged ({type(error).__name__}); the same "
                "`sweep run` command rebuilds it",
            ) from None  # fmt: skip
        # Catalogues written before the column was named for what it holds.
        if "point" not in frame.columns:
            frame = frame.rename(columns={"minimum": "point"})
    else:
        if columns is not None:
            unknown = sorted(set(columns) - set(schema.names) - {"certified"})
            if unknown:
                raise KeyError(f"no column {unknown[0]!r} in {path}")
            # `certified` is not a shard column: it is joined in after the read.
            axes = axis_columns(schema.names)
            wanted = [*columns, "k", "n", *axes, "run", *filters]
            columns = [c for c in dict.fromkeys(wanted) if c in schema.names]
        if manifest:
            good = checksums.check(root, shard_rows(root), move=False, log=_warn)
            frame = _with_certified(_read(good, schema, columns), root)
        else:  # a plain folder of Parquet files
            frame = _plain_folder(root, path, columns)
    return _filtered(frame, filters, path)


def _plain_folder(root: Path, path: str | Path, columns: list[str] | None) -> pd.DataFrame:
    """The runs of a folder of Parquet files without a manifest (copied shards), or a
    one-line error where the folder holds no runs."""
    try:
        frame = pd.read_parquet(root, columns=columns)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        reason = "no such folder" if not root.exists() else "not a sweep results folder"
        raise ConfigError("path", None, None, detail=f"{path}: {reason} (a folder written "
                          f"by `sweep run`, with _manifest.json): {type(error).__name__}"
                          ) from None  # fmt: skip
    if "status" not in frame.columns and columns is None:
        raise ConfigError("path", None, None,
                          detail=f"{path}: not a sweep results folder (no runs in it)")  # fmt: skip
    return frame


def _filtered(frame: pd.DataFrame, filters: dict, path: str | Path = "") -> pd.DataFrame:
    for column, value in filters.items():
        if column not in frame.columns:
            raise KeyError(f"no column {column!r} in {path}")
        if column == "status":
            wanted = value if isinstance(value, (list, tuple, set)) else [value]
            unknown = sorted(set(map(str, wanted)) - set(STATUSES))
            if unknown:
                raise ConfigError("status", f"one of {', '.join(STATUSES)}", unknown[0])
        if isinstance(value, (list, tuple, set, range)):
            frame = frame[frame[column].isin(list(value))]
        else:
            frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)


def _with_certified(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The runs with their `certified` column, once `sweep certify` has run."""
    path = root / layout.CERTIFIED
    if not path.is_file():
        return frame
    on = ["k", "n", *axis_columns(frame.columns), "run"]
    proved = pd.read_parquet(path, columns=[*on, "certified"])
    frame = frame.merge(proved, on=on, how="left")
    return frame.assign(certified=frame["certified"].astype("boolean").fillna(False).astype(bool))


def _read(files: list[Path], schema: pa.Schema, columns: list[str] | None = None) -> pd.DataFrame:
    if not files:
        return schema.empty_table().select(columns or schema.names).to_pandas()
    dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
    return dataset.to_table(columns=columns).to_pandas()


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def _critical(path: str | Path) -> pd.DataFrame:
    """The tables `sweep critical --out path` wrote, one per k and n (`path` is
    the --out folder or the critical/ folder inside it, which the command prints)."""
    path = Path(path)
    files = sorted((path / layout.CRITICAL).glob("k*-n*.parquet"))
    if not files and path.name == layout.CRITICAL:
        files = sorted(path.glob("k*-n*.parquet"))
    if not files:
        raise ConfigError("FOLDER", "a folder written by `sweep critical`", path)
    frames = [pd.read_parquet(f) for f in files]
    for frame in frames:
        if "activation" not in frame:  # written before other activations had tables
            frame["activation"] = "relu"
    return pd.concat(frames, ignore_index=True)


def load_certified(root: str | Path) -> pd.DataFrame | None:
    """The per-run verdicts of `sweep certify`, if it ran."""
    path = Path(root) / CERTIFIED
    return pd.read_parquet(path) if path.is_file() else None


def open_sweep(path: str | Path) -> tuple[Path, Config]:
    """A sweep folder (given as itself or its runs/ folder) and its config: the one way
    every command and `sweep.replay` / `sweep.certify` open a finished or running sweep."""
    root = sweep_root(path)
    if not (root / MANIFEST).is_file():
        raise ConfigError("SWEEP", "a sweep results folder (with _manifest.json)", path)
    return root, from_dict(read_manifest(root)["config"])
