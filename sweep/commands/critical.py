"""Critical points in fixed-point spaces (`sweep critical --k 6..100 --out DIR`).

For each k, Newton's method on F restricted to the fixed-point space of each isotropy
type (`symmetry/fixed_points.py`: Delta S_k, every Delta(S_p x S_k-p), every
Delta(S_p x S_q x S_r)) finds minima and saddles alike, including those gradient descent
never reaches. Each distinct point gets its isotropy, its symmetry-adapted spectrum and a
proof (`proofs/symmetric.py`, in worker processes; the full-space proof where the
symmetric one cannot decide and the point is small). One Parquet file per k under
DIR/critical/, written when the k is done, so an interrupted run resumes where it stopped;
`sweep.load(DIR, table="critical")` reads them all.
"""

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..config.expressions import evaluate, widths_for
from ..limits import FULL_SPACE_PROOF_IN_SEARCH
from ..objectives import kernels
from ..outcomes import PointKind, Status
from ..proofs import (
    Certificate,
    Claim,
    ProofJob,
    ProofOutcome,
    extra_neuron,
    prove_all,
    prove_point,
    split_neuron,
)
from ..proofs.pipeline import ARCSINE
from ..results import layout, runs_table, store
from ..symmetry import families, fixed_points, isotypic, neighbours
from ..symmetry.canonical import canonical_form, same_canonical
from ..symmetry.structure import Structure

FOLDER = layout.CRITICAL
COLUMNS = [
    "k", "n", "d", "searched", "isotropy", "group", "loss", "index", "kind", "manifold_dim",
    "min_eig", "min_eig_multiplicity", "min_eig_component", "eigenvalues", "found", "certified",
    "proof", "reason", "loss_low", "loss_high", "min_eig_low", "proof_seconds", "weights",
    "activation", "nullity", *families.COLUMNS, "fate_n_plus_1", "fate_slope", "fate_split",
    "fate_split_bound",
]  # fmt: skip


def _kernel(activation: str):
    try:
        return kernels.kernel(activation)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            "--activation",
            "a name (relu, erf, normal_cdf, tanh, sigmoid, "
            "softplus, gelu, silu, linear, quadratic) or a dotted path "
            "module.function",
            activation,
        ) from error


def parse_types(
    k_values: tuple[int, ...], n: str, types: str | None, sizes: list[str]
) -> tuple[dict, int]:
    """The CLI's --n, --types (None: `fixed_points.default_shapes` at each k) and --sizes:
    ({k: types to search}, extra neurons)."""
    extras = {widths_for(n, k, "--n")[0] - k for k in k_values}
    if len(extras) != 1 or not extras <= {0, 1, 2}:
        raise ConfigError("--n", "k, k+1 or k+2 (one width per k)", n)
    shapes = [shape for shape in (types or "").split(",") if shape]
    if not set(shapes) <= {"k", "pairs", "triples", "thin", "splits"}:
        raise ConfigError("--types", "a comma list of k, pairs, triples, thin, splits", types)

    def sizes_at(part, k):
        found = tuple(int(evaluate(p.strip(), "--sizes", k=k)) for p in part.split("+"))
        if sum(found) != k or min(found) < 1:
            raise ConfigError("--sizes", f"positive block sizes adding up to k = {k}", part)
        return found

    chosen = {k: (*(shapes if types is not None else fixed_points.default_shapes(k)),
                  *(sizes_at(part, k) for part in sizes)) for k in k_values}  # fmt: skip
    if not any(chosen.values()):
        raise ConfigError("--types", "at least one type (or --sizes)", types)
    return chosen, extras.pop()


def prove_limit(text: str | None, k: int) -> int | None:
    """--prove-index at k (an expression in k), None: prove every point."""
    return None if text is None else int(evaluate(text, "--prove-index", k=k))


def table_path(out: str | Path, k: int, n: int, activation: str = "relu") -> Path:
    """One file per k and n; another activation's tables beside ReLU's, named for it."""
    tail = "" if activation == "relu" else "-" + re.sub(r"[^A-Za-z0-9_]+", "_", activation)
    return Path(out) / FOLDER / f"k{k:03d}-n{n:03d}{tail}.parquet"


def _rows(k: int, points: list, outcomes: list[ProofOutcome], activation: str) -> pd.DataFrame:
    rows = []
    for point, outcome in zip(points, outcomes, strict=True):
        low, multiplicity, component = isotypic.smallest(point.blocks)
        found = outcome.certificate
        n, d = point.weights.shape
        rows.append({
            "k": k, "n": n, "d": d, "searched": "+".join(map(str, point.searched)),
            "isotropy": point.structure.notation(), "group": point.structure.group(),
            "loss": point.loss, "index": point.index,
            "kind": str(PointKind.of_index(point.index, point.nullity - point.manifold_dimension)),
            "nullity": point.nullity,
            "manifold_dim": point.manifold_dimension, "min_eig": low,
            "min_eig_multiplicity": multiplicity, "min_eig_component": component,
            "eigenvalues": sum(len(b.eigenvalues) for b in point.blocks),
            "found": point.found, "certified": str(outcome.verdict),
            "proof": found.route if found else "", "reason": outcome.reason,
            "loss_low": found.loss_low if found else np.nan,
            "loss_high": found.loss_high if found else np.nan,
            "min_eig_low": found.min_eig_low if found else np.nan,
            "proof_seconds": found.seconds if found else np.nan,
            "weights": canonical_form(point.weights).ravel(), "activation": activation,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


PROVABLE = ("relu", *ARCSINE)
UNPROVABLE = (
    "no proof for {activation}: its kernel is a quadrature, computed in floating point, "
    "with no enclosure of its error (proofs exist for relu, erf and normal_cdf)"
)

DEGENERATE = (
    "degenerate: {count} zero Hessian eigenvalues where no manifold of parallel neurons "
    "explains them; a proof of a nondegenerate point does not apply"
)

NOT_ISOLATED = (
    "not isolated: {count} neurons point the same way, so their norm can be shared among "
    "them along a {dimension}-dimensional family of critical points with one network "
    "function; a proof of an isolated point does not apply"
)


def _skipped(point, prove_index: int | None, activation: str = "relu") -> ProofOutcome | None:
    """Why a point gets no proof, or None where it gets one."""
    if activation not in PROVABLE:
        return ProofOutcome.skipped(UNPROVABLE.format(activation=activation))
    if point.manifold_dimension:
        count = sum(len(g) for g in fixed_points.parallel_groups(point.weights) if len(g) > 1)
        return ProofOutcome.skipped(
            NOT_ISOLATED.format(count=count, dimension=point.manifold_dimension)
        )
    if point.nullity > point.manifold_dimension:
        return ProofOutcome.skipped(DEGENERATE.format(count=point.nullity))
    if prove_index is not None and point.index > prove_index:
        return ProofOutcome.skipped("index above --prove-index")
    return None


def _jobs(k: int, points: list, chosen: list[int], activation: str) -> list[ProofJob]:
    """A proof of each chosen point: in its own fixed-point space, its index confirmed."""
    return [
        ProofJob(functools.partial(_prove, k=k, structure=points[i].structure,
                                   activation=activation),
                 points[i].weights, Claim(negative=points[i].index))
        for i in chosen
    ]  # fmt: skip


def _prove(
    weights: np.ndarray, radius: float, k: int, structure: Structure, activation: str
) -> Certificate:
    return prove_point(weights, k, structure, radius, full_limit=FULL_SPACE_PROOF_IN_SEARCH,
                       activation=activation)  # fmt: skip


def _followed(k: int, types: list, ends: list, previous: list, splits: bool, extra: int,
              kernel) -> list:  # fmt: skip
    """The Newton ends of random starts, with the points of k - 1 carried to k and every
    type seeded with its neighbours' points (`neighbours.py`); with `splits`, the
    three-block types one or two neurons away from a point found (not searched from
    random starts) are reached from it and flooded in turn."""
    reached = set(types)
    if splits:
        reached |= set(fixed_points.isotropy_types(k, ("triples",)))
    carried = neighbours.seeds_for(previous, neighbours.grown, reached, kernel)
    ends = neighbours.fill(k, sorted(reached), ends, extra, kernel, carried)
    if not splits:
        return ends
    seeds = neighbours.split_seeds(ends, reached - set(types), extra, kernel=kernel)
    return neighbours.fill(k, sorted(reached), ends, extra, kernel, seeds, frontier=[])


def _carried(k: int, before: tuple | None, extra: int) -> list:
    """Newton ends at k (count 0) where the curves of k - 1's points reach k."""
    if before is None or len(before) < 3:
        return []
    return [(families.at(point, k - 1, k, extra), path.crossed[k], 0)
            for point, _, path in zip(*before, strict=True) if k in path.crossed]  # fmt: skip


def _classified(k: int, points: list, limit: int | None, activation: str, workers: int | None,
                progress: bool) -> pd.DataFrame:  # fmt: skip
    """The rows of these points at k, each proved unless `_skipped`."""
    outcomes = [_skipped(p, limit, activation) for p in points]
    chosen = [i for i, outcome in enumerate(outcomes) if outcome is None]
    bar = f"k={k}: proofs" if progress else None
    proven = prove_all(_jobs(k, points, chosen, activation), workers, bar)
    for i, outcome in zip(chosen, proven, strict=True):
        outcomes[i] = outcome
    frame = _rows(k, points, outcomes, activation)
    if activation == "relu" and points:
        # F = 0 is the global minimum with or without a proof: it stays one
        minima = [p.loss < extra_neuron.GLOBAL and p.index == 0 or o.certificate
                  and o.certificate.proved and o.certificate.negative == 0
                  for p, o in zip(points, outcomes, strict=True)]  # fmt: skip
        items = list(zip(points, outcomes, minima, strict=True))
        fates = [extra_neuron.fate(o.certificate, k, p.loss) if minimum else ("", np.nan)
                 for p, o, minimum in items]  # fmt: skip
        frame["fate_n_plus_1"] = [text for text, _ in fates]
        frame["fate_slope"] = [high for _, high in fates]
        orbits = split_neuron.orbits
        splits = [split_neuron.fate(o.certificate, k, p.loss, orbits(p.structure.row_slot))
                  if minimum else ("", np.nan) for p, o, minimum in items]  # fmt: skip
        frame["fate_split"] = [text for text, _ in splits]
        frame["fate_split_bound"] = [value for _, value in splits]
    return frame


def _add_missed(out, k: int, extra: int, items: list, limit, activation: str, workers,
                kernel, log) -> None:  # fmt: skip
    """Points of families found at a larger k whose curves pass k, where k's search
    missed them: added to k's table (found = 0)."""
    path = table_path(out, k, k + extra, activation)
    table = pd.read_parquet(path)
    known = families.records(table)
    points, found = [], []
    for member, structure, theta in items:
        for point in fixed_points.distinct([(structure, theta, 0)], k, kernel):
            if families.locate(known, point.weights, point.loss) is None:
                known.append(point)
                points.append(point)
                found.append(member)
    if not points:
        return
    paths = [families.Path() for _ in points]  # their curves go on: they were followed here
    frame = _classified(k, points, limit, activation, workers, False)
    frame = frame.assign(**families.columns(found, paths))
    frame = pd.concat([table, frame], ignore_index=True).sort_values(["loss", "index"])
    layout.write_atomic(out, path, lambda tmp: frame.to_parquet(tmp, index=False))
    log(f"k={k}: {len(points)} points added, on the curves of families found above k")


def find_critical(
    k_values: tuple[int, ...],
    out: str | Path,
    shapes: tuple | dict | None = None,
    starts: int = 96,
    extra: int = 0,
    prove_index: int | None | Callable[[int], int | None] = None,
    workers: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
    activation: str = "relu",
    follow: bool = True,
) -> pd.DataFrame:
    """Search, classify and prove the critical points in fixed-point spaces for each k;
    returns the table of all of them (also written under `out`). Points of index above
    `prove_index` (default: every point; -1: none) are listed without a proof; `progress`:
    a bar of each k's proofs on stderr. `activation`: a name of `objectives/kernels.py`
    or a dotted import path (the teacher stays orthonormal, the output weights ones).
    `shapes` may differ by k ({k: shapes}; None: `fixed_points.default_shapes`);
    "splits" reaches three-block types from the points found (`_followed`). `follow`:
    seed each type with the points of its neighbouring types, and each k with the points
    of k - 1 (`symmetry/neighbours.py`).
    `prove_index` may be a function of k."""
    kernel = None if activation == "relu" else _kernel(activation)
    out = Path(out)
    try:
        (out / FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError("--out", "a folder this user can write", out,
                          detail=f"--out: cannot create {out / FOLDER}: "
                          f"{store.describe(error)}") from None  # fmt: skip
    previous, before, taken = [], None, set()  # k - 1's Newton ends, (points, families)
    for k in k_values:
        path = table_path(out, k, k + extra, activation)
        if path.is_file():
            log(f"k={k}: already done ({path})")
            stored = pd.read_parquet(path)
            if "family" in stored:  # a table written before families has none
                taken |= set(stored["family"].dropna())
            previous, before = [], families.stored(stored)
            continue
        start = time.perf_counter()
        asked = (shapes[k] if isinstance(shapes, dict)
                 else shapes or fixed_points.default_shapes(k))  # fmt: skip
        types = fixed_points.isotropy_types(k, tuple(s for s in asked if s != "splits"))
        ends = fixed_points.newton_ends(k, types, starts, extra=extra, kernel=kernel)
        if follow:
            ends = _followed(k, types, ends, previous, "splits" in asked, extra, kernel)
            ends += _carried(k, before, extra)
        previous = ends
        points = fixed_points.distinct(ends, k, kernel)
        carrying = before if before and len(before) == 3 else None  # not read from a file
        found = families.inherited(points, k, carrying, extra, kernel) if follow else []
        if follow:
            paths = families.carry(points, k, extra, kernel)
            found, missed = families.members(points, k, found, taken, extra, kernel, before, paths)
            before = (points, found, paths)
        searched = time.perf_counter() - start
        limit = prove_index(k) if callable(prove_index) else prove_index
        frame = _classified(k, points, limit, activation, workers, progress)
        if follow:
            frame = frame.assign(**families.columns(found, paths))
            for lower, items in sorted(missed.items()):
                if lower in k_values and table_path(out, lower, lower + extra,
                                                    activation).is_file():  # fmt: skip
                    _add_missed(out, lower, extra, items, limit, activation, workers, kernel, log)
        layout.write_atomic(out, path, lambda tmp, f=frame: f.to_parquet(tmp, index=False))
        proved = int((frame["certified"] == "proved").sum())
        slowest = frame["proof_seconds"].max() if proved else 0.0
        minima = int((frame["kind"] == "minimum").sum())
        log(f"k={k}: {len(frame)} critical points ({minima} minima), "
            f"{proved} proved; search {searched:.1f} s, total "
            f"{time.perf_counter() - start:.1f} s, slowest proof {slowest:.2f} s")  # fmt: skip
    return runs_table.load(out, table="critical")


LOSS_NEAR = 1e-3


def reached(critical: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """The critical points with how many runs of a sweep's catalogue reached each
    (`runs`, 0 where none did), and the catalogue's points that lie in no searched
    fixed-point space (`searched` empty). Points are compared by `same_point`."""
    rows = []
    used = set()
    entries = {}  # (k, n): [(index, loss, canonical form, multiplicity)], sorted once
    for index, entry in catalogue.iterrows():
        shape = (entry["n"], entry["d"])
        entries.setdefault((entry["k"], entry["n"]), []).append(
            (index, entry["loss"], canonical_form(np.reshape(entry["weights"], shape)),
             int(entry["multiplicity"])))  # fmt: skip
    for point in critical.itertuples(index=False):
        cell = entries.get((point.k, point.n), [])
        # one point has one loss: entries of another loss are not compared (a catalogue's
        # loss is its runs' end points', within LOSS_NEAR of the critical point's)
        near = [entry for entry in cell if abs(entry[1] - point.loss) < LOSS_NEAR]
        mine = canonical_form(np.reshape(point.weights, (point.n, point.d))) if near else None
        runs = 0
        for index, _, theirs, multiplicity in near:
            if same_canonical(theirs, mine):
                runs += multiplicity
                used.add(index)
        rows.append({**point._asdict(), "runs": runs})
    for index, entry in catalogue.iterrows():
        if index in used or entry["status"] == Status.GLOBAL and entry["n"] > entry["k"]:
            continue
        rows.append({"k": entry["k"], "n": entry["n"], "d": entry["d"], "searched": "",
                     "isotropy": entry["symmetry"], "loss": entry["loss"],
                     "kind": str(PointKind.SADDLE if entry["status"] == Status.SADDLE
                                 else PointKind.MINIMUM),
                     "min_eig": entry["min_eig"], "runs": int(entry["multiplicity"]),
                     "weights": entry["weights"]})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["k", "n", "loss"], ignore_index=True)


def format_table(table: pd.DataFrame, limit: int = 12) -> str:
    """The critical points per k, lowest loss first (the `limit` lowest of each k)."""
    shown = ["k", "n", "isotropy", "loss", "index", "nullity", "manifold_dim", "min_eig",
             "min_eig_multiplicity", "found", "certified"]  # fmt: skip
    parts = []
    for _, cell in table.groupby(["activation", "k", "n"]):
        more = len(cell) - limit
        text = cell[shown].head(limit).to_string(index=False, float_format=lambda x: f"{x:.7g}")
        parts.append(text + (f"\n  ... and {more} more" if more > 0 else ""))
    return "\n\n".join(parts)


def format_families(table: pd.DataFrame) -> str:
    """How many families the table holds, and those that are minima at some k."""
    summary = families.summary(table)
    minima = summary[summary["minimum_at"] != ""]
    shown = ["family", "first_k", "last_k", "loss_first", "loss_last", "starts", "ends", "index"]
    return f"{len(summary)} families, {len(minima)} of them minima at some k:\n" + minima[
        shown
    ].to_string(index=False, float_format=lambda x: f"{x:.7g}")


def format_reached(joined: pd.DataFrame) -> str:
    """Which critical points the sweep's runs reached (runs > 0), and its points found in
    no searched fixed-point space."""
    reached = joined[joined["runs"] > 0]
    shown = ["k", "n", "isotropy", "loss", "kind", "runs", "searched"]
    return "reached by the sweep's runs:\n" + reached[shown].to_string(
        index=False, float_format=lambda x: f"{x:.7g}"
    )
