"""Prove every distinct point a sweep of the closed form found (`sweep certify`).

Each row of the catalogue (`_catalogue.parquet`: spurious minima, saddles, and one row for
the global minima of a cell) gets a certificate (`Problem.certify`), judged against its
status by the proof pipeline (`proofs/pipeline.py`, on all cores in worker processes). The
catalogue gains the columns certified ("proved", "failed" or "skipped"), reason, radius,
loss_low, loss_high, min_eig_low, negative and seconds. A run is certified when its end
point, in canonical form (the permutation that maps it onto its catalogued point), lies in
that point's proven box and the proof agrees with its status; `_certified.parquet` holds
that per run.
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import problems
from ..config import ConfigError
from ..config import cells as config_cells
from ..config.grid import axis_columns
from ..limits import SAME_POINT, SMALLEST_RADIUS
from ..outcomes import PointKind, Status, Verdict
from ..proofs import Claim, ProofJob, ProofOutcome, prove_all
from ..results import runs_table, store
from ..results.layout import CATALOGUE, CERTIFIED
from ..symmetry.canonical import canonical_form, gap

# What a proof must confirm for each status of the catalogue.
CLAIMS = {
    Status.SADDLE: Claim(kind=PointKind.SADDLE),
    Status.SPURIOUS: Claim(kind=PointKind.MINIMUM, loss_positive=True),
    Status.GLOBAL: Claim(kind=PointKind.MINIMUM, loss_positive=False),
}
CONTINUUM = "non-isolated, F = 0: the global minima of n > k form a continuum"


def _members(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Each catalogued run with its point (row of `table`: the nearest one of its cell
    and status that is the same point), its canonical end point and their gap."""
    keys = ["k", "n", *axis_columns(runs.columns)]
    points = {key: cell for key, cell in table.groupby([*keys, "status"], sort=False)}
    found = []
    for row in runs.to_dict("records"):
        cell = points.get(tuple(row[key] for key in [*keys, "status"]))
        if cell is None:
            continue
        end = np.reshape(row["weights"], (row["n"], row["d"]))
        shape = end.shape
        gaps = [gap(end, np.reshape(w, shape)) for w in cell["weights"]]
        best = int(np.argmin(gaps))
        if not gaps[best] < SAME_POINT:  # what `same_point` decides, from the gap at hand
            continue
        found.append({**{key: row[key] for key in keys}, "run": row["run"],
                      "point": cell.index[best], "canonical": canonical_form(end).ravel(),
                      "gap": gaps[best]})  # fmt: skip
    return pd.DataFrame(found, columns=[*keys, "run", "point", "canonical", "gap"])


def certify_sweep(
    folder: str | Path,
    workers: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> pd.DataFrame:
    """Prove every point of a sweep folder's catalogue; returns the catalogue with its
    certificates (also written back, and the per-run verdicts to `_certified.parquet`).
    `progress`: a bar of the proofs on stderr."""
    root, config = runs_table.open_sweep(folder)
    if not problems.KINDS[config.problem.kind].proves(config):
        raise ConfigError("SWEEP", None, None, detail=f"{folder}: proofs exist for sweeps of "
                          "the closed-form loss of ReLU, Leaky ReLU, erf or normal_cdf against the "
                          "orthonormal "
                          "teacher with fixed output weights; this sweep has problem.kind = "
                          f"{config.problem.kind}, activation = {config.problem.activation}, "
                          f"teacher = {config.problem.teacher}, output = "
                          f"{config.problem.output}")  # fmt: skip
    if not (root / CATALOGUE).is_file():
        raise ConfigError("SWEEP", "a finished sweep (with its catalogue)", folder)
    cells = {cell.key: cell for cell in config_cells(config)}
    axes = axis_columns(runs_table.table_schema(config).names)
    runs = runs_table.load(root)
    table = runs_table.load(root, table="catalogue")
    members = _members(runs[runs["status"].isin(table["status"].unique())], table)
    jobs, outcomes = {}, {}
    for index, point in table.iterrows():
        if point["status"] == Status.GLOBAL and point["n"] > point["k"]:
            outcomes[index] = ProofOutcome.skipped(CONTINUUM)
            continue
        spread = members.loc[members["point"] == index, "gap"].max()
        radius = max(SMALLEST_RADIUS, 4 * float(spread if np.isfinite(spread) else 0.0))
        weights = np.reshape(point["weights"], (point["n"], point["d"]))
        key = (point["k"], point["n"], *(point[axis] for axis in axes))
        problem = problems.for_cell(config, cells[key])
        jobs[index] = ProofJob(problem.certify, weights, CLAIMS[point["status"]], radius)
    start = time.perf_counter()
    bar = "certify" if progress else None
    outcomes.update(zip(jobs, prove_all(list(jobs.values()), workers, bar), strict=True))
    log(f"{root}: {len(jobs)} proofs in {time.perf_counter() - start:.1f} s")
    table = _record(table, outcomes)
    runs_certified = _per_run(members, table)
    store.write_catalogue(root, table.drop(columns=["centre"]))
    store.write_table(root, CERTIFIED, runs_certified)
    return table.drop(columns=["centre"])


def _record(table: pd.DataFrame, outcomes: dict) -> pd.DataFrame:
    """The catalogue with each point's verdict and its certificate's bounds."""
    columns = {name: [] for name in ("certified", "reason", "radius", "loss_low", "loss_high",
                                     "min_eig_low", "negative", "seconds", "centre")}  # fmt: skip
    for index in table.index:
        outcome = outcomes[index]
        found = outcome.certificate
        columns["certified"].append(str(outcome.verdict))
        columns["reason"].append(outcome.reason)
        if found is None:
            values = dict(radius=np.nan, loss_low=np.nan, loss_high=np.nan, min_eig_low=np.nan,
                          negative=-1, seconds=0.0, centre=None)  # fmt: skip
        else:
            values = {name: getattr(found, name) for name in ("radius", "loss_low", "loss_high",
                      "min_eig_low", "negative", "seconds")}  # fmt: skip
            values["centre"] = found.centre.ravel()
        for name, value in values.items():
            columns[name].append(value)
    return table.assign(**columns)


def _per_run(members: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    certified = []
    for row in members.itertuples(index=False):
        point = table.loc[row.point]
        inside = False
        if point["certified"] == Verdict.PROVED:
            inside = bool(np.max(np.abs(row.canonical - point["centre"])) < point["radius"])
        certified.append(inside)
    keys = ["k", "n", *axis_columns(members.columns), "run", "point"]
    frame = members[keys].assign(certified=certified)
    return frame.astype({"k": "int64", "n": "int64", "run": "int64", "point": "int64"})
