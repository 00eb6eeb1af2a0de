"""Prove every distinct point a sweep of the closed form found (`python -m sweep certify`).

Each row of the catalogue (`_catalogue.parquet`: spurious minima, saddles, and one row for
the global minima of a cell) gets a certificate (`Problem.certify`, `proofs/certificate.py`),
computed on all cores in spawned worker processes, which run ball arithmetic only. The
catalogue gains the columns certified ("proved", "failed" or "skipped"), reason, radius,
loss_low, loss_high, min_eig_low, negative and seconds. A run is certified when its end
point, in canonical form (the permutation that maps it onto its catalogued point), lies in
that point's proven box and the proof agrees with its status; `_certified.parquet` holds
that per run.
"""

import concurrent.futures
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import problems
from ..config import ConfigError
from ..config import cells as config_cells
from ..config.grid import axis_columns
from ..outcomes import Status
from ..results import runs_table, store
from ..results.layout import CATALOGUE, CERTIFIED
from ..runtime import cpu_cores
from ..symmetry.canonical import canonical_form

SMALLEST_RADIUS = 1e-9


def _prove(job: tuple) -> dict:
    """One proof (`Problem.certify`), in a worker process: ball arithmetic only."""
    problem, weights, radius = job
    found = problem.certify(weights, radius)
    return {
        "proved": found.proved, "kind": found.kind, "reason": found.reason,
        "radius": found.radius, "loss_low": found.loss_low, "loss_high": found.loss_high,
        "min_eig_low": found.min_eig_low, "negative": found.negative,
        "seconds": found.seconds, "centre": found.centre.ravel(),
    }  # fmt: skip


def _verdict(status: str, proof: dict) -> tuple[str, str]:
    """(certified, reason) of a catalogued point from its proof and its recorded status."""
    if not proof["proved"]:
        return "failed", proof["reason"]
    if status == Status.SADDLE:
        if proof["kind"] == "saddle":
            return "proved", ""
        return "failed", "proved a strict minimum, not a saddle"
    if proof["kind"] != "minimum":
        return "failed", f"proved a saddle ({proof['negative']} negative eigenvalues)"
    if status == Status.SPURIOUS and not proof["loss_low"] > 0:
        return "failed", "F on the box reaches 0: not proved above the global minimum"
    if status == Status.GLOBAL and not proof["loss_low"] <= 0 <= proof["loss_high"]:
        return "failed", "F on the box excludes 0: not the global minimum"
    return "proved", ""


def _members(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Each catalogued run with its point (row of `table`) and its canonical end point."""
    keys = ["k", "n", *axis_columns(runs.columns)]
    points = {key: cell for key, cell in table.groupby([*keys, "status"], sort=False)}
    found = []
    for row in runs.to_dict("records"):
        cell = points.get(tuple(row[key] for key in [*keys, "status"]))
        if cell is None:
            continue
        canonical = canonical_form(np.reshape(row["weights"], (row["n"], row["d"]))).ravel()
        gaps = [np.max(np.abs(canonical - w)) for w in cell["weights"]]
        best = int(np.argmin(gaps))
        found.append({**{key: row[key] for key in keys}, "run": row["run"],
                      "point": cell.index[best], "canonical": canonical,
                      "gap": gaps[best]})  # fmt: skip
    return pd.DataFrame(found, columns=[*keys, "run", "point", "canonical", "gap"])


def certify_sweep(
    folder: str | Path, workers: int | None = None, log: Callable[[str], None] = print
) -> pd.DataFrame:
    """Prove every point of a sweep folder's catalogue; returns the catalogue with its
    certificates (also written back, and the per-run verdicts to `_certified.parquet`)."""
    root, config = runs_table.open_sweep(folder)
    if not (root / CATALOGUE).is_file():
        raise ConfigError("SWEEP", "a finished sweep (with its catalogue)", folder)
    if not problems.KINDS[config.problem.kind].catalogued:
        raise ConfigError("SWEEP", "a sweep of the closed-form loss", config.problem.kind)
    cells = {cell.key: cell for cell in config_cells(config)}
    axes = axis_columns(runs_table.table_schema(config).names)
    runs = runs_table.load(root)
    table = runs_table.load(root, table="catalogue")
    members = _members(runs[runs["status"].isin(table["status"].unique())], table)
    jobs, skipped = {}, {}
    for index, point in table.iterrows():
        if point["status"] == Status.GLOBAL and point["n"] > point["k"]:
            skipped[index] = "non-isolated, F = 0: the global minima of n > k form a continuum"
            continue
        gap = members.loc[members["point"] == index, "gap"].max()
        radius = max(SMALLEST_RADIUS, 4 * float(gap if np.isfinite(gap) else 0.0))
        weights = np.reshape(point["weights"], (point["n"], point["d"]))
        key = (point["k"], point["n"], *(point[axis] for axis in axes))
        problem = problems.for_cell(config, cells[key])
        jobs[index] = (problem, weights, radius)
    start = time.perf_counter()
    proofs = dict(zip(jobs, map_in_workers(_prove, list(jobs.values()), workers), strict=True))
    log(f"{root}: {len(jobs)} proofs in {time.perf_counter() - start:.1f} s")
    table = _record(table, proofs, skipped)
    runs_certified = _per_run(members, table, proofs)
    store.write_catalogue(root, table.drop(columns=["centre"]))
    store.write_table(root, CERTIFIED, runs_certified)
    return table.drop(columns=["centre"])


def map_in_workers(function: Callable, jobs: list, workers: int | None) -> list:
    """[function(job) for job in jobs] on `workers` processes (default: one per core)."""
    workers = workers or cpu_cores()
    if workers <= 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    # Spawned workers: this process may hold JAX's threads, which a fork must not copy.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(function, jobs))


def _record(table: pd.DataFrame, proofs: dict, skipped: dict) -> pd.DataFrame:
    columns = {name: [] for name in ("certified", "reason", "radius", "loss_low", "loss_high",
                                     "min_eig_low", "negative", "seconds", "centre")}  # fmt: skip
    for index, point in table.iterrows():
        proof = proofs.get(index)
        if proof is None:
            verdict, reason = "skipped", skipped[index]
            proof = dict(radius=np.nan, loss_low=np.nan, loss_high=np.nan, min_eig_low=np.nan,
                         negative=-1, seconds=0.0, centre=None)  # fmt: skip
        else:
            verdict, reason = _verdict(point["status"], proof)
        columns["certified"].append(verdict)
        columns["reason"].append(reason)
        for name in ("radius", "loss_low", "loss_high", "min_eig_low", "negative", "seconds",
                     "centre"):  # fmt: skip
            columns[name].append(proof[name])
    return table.assign(**columns)


def _per_run(members: pd.DataFrame, table: pd.DataFrame, proofs: dict) -> pd.DataFrame:
    certified = []
    for row in members.itertuples(index=False):
        point = table.loc[row.point]
        inside = False
        if point["certified"] == "proved":
            inside = bool(np.max(np.abs(row.canonical - point["centre"])) < point["radius"])
        certified.append(inside)
    keys = ["k", "n", *axis_columns(members.columns), "run", "point"]
    frame = members[keys].assign(certified=certified)
    return frame.astype({"k": "int64", "n": "int64", "run": "int64", "point": "int64"})
