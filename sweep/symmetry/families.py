"""Families of critical points in k: each point followed along its curve in k.

The reduced loss (`reduced.py`) has the block sizes as numbers, so it can be evaluated at
real k. A family is a curve on which the largest block of its type grows with k and the
other blocks stay fixed: Delta(S_31 x S_k-31), say. `follow` walks a batch of points
along their curves by natural-parameter continuation: a step in k (at most STEP, never
over an integer), a secant prediction from the last two points, Newton to correct,
the step halved where Newton fails or lands on another branch (farther than DRIFT from
the prediction). Where the step falls below MIN_STEP the curve ends: at a fold (the
reduced Hessian singular, where two families meet and end together) or where Newton loses
it otherwise (a neuron dying, say). Backwards, a curve also ends where its growing block
is no longer the largest (its floor).

A family is named for its fixed blocks, where it starts and its loss there:
"31+k-31@61.4:0.1012" begins at a fold near k = 61.4 with F = 0.1012 at k = 62;
"31+k-31@62.0:0.1063,0.1071" at its floor, k = 62, with F there and at k = 63 (two curves
leave a point at its floor, one for each of its two equal blocks). The name does not
depend on the range of k searched: each new point is followed backwards to its start.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..limits import CRITICAL_GRAD, SAME_POINT
from . import fixed_points, reduced
from .canonical import same_point
from .structure import Structure

STEP = 1.0  # the longest step in k
MIN_STEP = 2.0**-12  # a curve that cannot be followed by this step ends there
NEAR_FLOOR = 0.01  # a curve that ends this close to its floor is said to end there
NEWTON_STEPS = 12  # from a prediction this close, Newton converges in a few steps
DRIFT = 0.02  # a corrected point farther than this from its prediction left the branch
FOLD = 0.05  # a curve ends at a fold when its reduced Hessian's smallest |eigenvalue| is
# below this fraction of its largest there


@dataclass
class Path:
    """Where one point's curve went: its parameters at each integer k passed (its own
    template's block sizes, the growing one changed by the k moved) and where it ended."""

    crossed: dict = field(default_factory=dict)  # {integer k: parameters}
    end: float = np.nan  # the k where the curve ends; NaN: it reached the target
    reason: str = ""  # "fold", "lost" (Newton loses it) or "floor"


def growing(structure: Structure) -> int:
    """The factor that grows with k: the largest block (the last, blocks ascending)."""
    return len(structure.col_slots) - 1


def floor(structure: Structure) -> int:
    """The smallest k on the curve: where its growing block is as large as the next."""
    blocks = structure.sizes[: len(structure.col_slots)]
    below = blocks[-2] if len(blocks) > 1 else 1
    return structure.k - (blocks[-1] - below)


def follow(candidates: list, target: int, kernel: Any = None) -> list[Path]:
    """Each candidate (template at its k, parameters, count) followed along its curve to
    k = `target` (up or down; down, no further than its floor)."""
    paths = [Path() for _ in candidates]
    by_signature: dict = {}
    for i, (structure, _, _) in enumerate(candidates):
        by_signature.setdefault(structure.signature, []).append(i)
    for signature, members in by_signature.items():
        _follow(signature, [candidates[i] for i in members], target, kernel,
                [paths[i] for i in members])  # fmt: skip
    return paths


def _follow(signature: tuple, candidates: list, target: int, kernel: Any, paths: list) -> None:
    count = len(candidates)
    k0 = np.array([float(s.k) for s, _, _ in candidates])
    base = np.array([np.asarray(s.sizes, float) for s, _, _ in candidates])
    grow = np.array([growing(s) for s, _, _ in candidates])
    down = target < k0
    stop = np.where(down, np.maximum(target, [floor(s) for s, _, _ in candidates]), target)
    theta = np.array([t for _, t, _ in candidates], float)
    previous, previous_k = theta.copy(), np.full(count, np.nan)
    k = k0.copy()
    step = np.where(down, -STEP, STEP)
    active = k != stop
    for i in range(count):
        paths[i].crossed[int(k[i])] = theta[i]
    while active.any():
        rows = np.flatnonzero(active)
        nearest = np.where(down, np.ceil(k - 1), np.floor(k + 1))  # the next integer
        bound = np.where(down, np.maximum(nearest, stop), np.minimum(nearest, stop))
        to = np.where(down, np.maximum(k + step, bound), np.minimum(k + step, bound))
        slope = (
            np.where(np.isfinite(previous_k), 1.0, 0.0)[:, None]
            * (theta - previous)
            / (np.where(np.isfinite(previous_k), k - previous_k, 1.0)[:, None])
        )
        guess = theta + slope * (to - k)[:, None]
        sizes = base.copy()
        sizes[np.arange(count), grow] += to - k0
        new, norm = fixed_points.newton_in_batches(guess[rows], sizes[rows], 0.0, signature, kernel,
                                                steps=NEWTON_STEPS)  # fmt: skip
        good = (np.isfinite(norm) & (norm < CRITICAL_GRAD)
                & (np.linalg.norm(new - guess[rows], axis=1) <= DRIFT))  # fmt: skip
        for j, i in enumerate(rows):
            if good[j]:
                previous[i], previous_k[i] = theta[i], k[i]
                theta[i], k[i] = new[j], to[i]
                step[i] = np.sign(step[i]) * min(2 * abs(step[i]), STEP)
                if k[i] == round(k[i]):
                    paths[i].crossed[int(round(k[i]))] = new[j]
                if k[i] == stop[i]:
                    active[i] = False
                    if down[i] and stop[i] == floor(candidates[i][0]):
                        paths[i].end, paths[i].reason = float(stop[i]), "floor"
                continue
            step[i] /= 2
            if abs(step[i]) < MIN_STEP and down[i] and k[i] - floor(candidates[i][0]) < NEAR_FLOOR:
                active[i] = False
                paths[i].end, paths[i].reason = float(floor(candidates[i][0])), "floor"
            elif abs(step[i]) < MIN_STEP:
                active[i] = False
                paths[i].end = float(k[i])
                at = base[i] + (k[i] - k0[i]) * (np.arange(len(base[i])) == grow[i])
                paths[i].reason = _why_it_ends(candidates[i][0], at, theta[i], kernel)


def _why_it_ends(structure: Structure, sizes, theta, kernel) -> str:
    """ "fold" where the reduced Hessian is nearly singular at the last point followed,
    "lost" otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hessian = reduced.hessian(structure, theta, kernel, sizes)
    if not np.all(np.isfinite(hessian)):
        return "lost"  # a neuron at zero: no Hessian there (ReLU)
    values = np.abs(np.linalg.eigvalsh(hessian))
    return "fold" if values.min() < FOLD * values.max() else "lost"


def pattern(structure: Structure) -> str:
    """The type with its growing block in k: "31+k-31", "1+6+k-7", "k", "4+k-4|1"."""
    blocks = structure.sizes[: len(structure.col_slots)]
    fixed = blocks[:-1]
    last = "k" if not fixed else f"k-{sum(fixed)}"
    text = "+".join([*map(str, fixed), last])
    extra = len(structure.sizes) - len(blocks)
    return text + "|1" * extra


@dataclass
class Member:
    """A point's family: its name, where it starts (k, and "fold", "lost" or "floor")."""

    family: str
    start: float
    start_reason: str


def _template(point: fixed_points.Point, k: int, extra: int) -> tuple:
    structure = fixed_points.template(point.searched, k, extra)
    return structure, structure.theta(point.weights), 0


def _resized(sizes: tuple, by: int) -> tuple:
    """The searched type with its growing (last) block `by` larger."""
    return (*sizes[:-1], sizes[-1] + by)


def carry(points: list, k: int, extra: int = 0, kernel: Any = None) -> list[Path]:
    """Each point followed to k + 1 (`Path.crossed[k + 1]`: its parameters there, in
    `at(point, k + 1)`'s template)."""
    return follow([_template(p, k, extra) for p in points], k + 1, kernel)


def at(point: fixed_points.Point, k: int, to: int, extra: int = 0) -> Structure:
    """The template of a point of k's curve at k = `to`."""
    return fixed_points.template(_resized(point.searched, to - k), to, extra)


def locate(points: list, weights: np.ndarray, loss: float) -> int | None:
    """The index of the point that is `weights` (`same_point`; for points on a manifold of
    parallel neurons, one network function), None if none is."""
    function = None
    for i, point in enumerate(points):
        if abs(point.loss - loss) >= SAME_POINT:
            continue
        if same_point(point.weights, weights):
            return i
        if point.manifold_dimension:
            function = fixed_points.network_function(weights) if function is None else function
            if same_point(fixed_points.network_function(point.weights), function):
                return i
    return None


def inherited(points: list, k: int, before: tuple | None, extra: int = 0,
              kernel: Any = None) -> list[Member | None]:  # fmt: skip
    """Each point's family where the curve of a point of k - 1 reaches it; `before`: k - 1's
    (points, members, paths of `carry`)."""
    found: list[Member | None] = [None] * len(points)
    for point, member, path in zip(*before, strict=True) if before else ():
        if k in path.crossed:
            structure = at(point, k - 1, k, extra)
            theta = path.crossed[k]
            i = locate(points, structure.point(theta), reduced.value(structure, theta, kernel))
            if i is not None and found[i] is None:
                found[i] = member
    return found


def members(points: list, k: int, found: list, taken: set, extra: int = 0, kernel: Any = None,
            before: tuple | None = None,
            ahead: list | None = None) -> tuple[list[Member], dict]:  # fmt: skip
    """Each point's family: `found[i]` (`inherited`) where given, else the family of the
    point of k - 1 (`before`: its points and members, or `stored`) its curve passes back
    through, else a new one, named for where its curve starts (followed back to a fold or
    its floor; `taken`: names already given). Also {k': [(member, template, parameters)]}:
    the integer k' < k a new family's curve passes (where the search may have missed it).
    `ahead`: the points' paths to k + 1 (`carry`), for names of curves that start at k."""
    found = list(found)
    used = {member.family for member in found if member is not None}  # one point per family
    new = [i for i, member in enumerate(found) if member is None]
    paths = follow([_template(points[i], k, extra) for i in new], 1, kernel)
    named = []
    for i, path in zip(new, paths, strict=True):
        if before and k - 1 in path.crossed:
            structure = at(points[i], k, k - 1, extra)
            theta = path.crossed[k - 1]
            j = locate(before[0], structure.point(theta), reduced.value(structure, theta, kernel))
            if j is not None and before[1][j].family not in used:
                found[i] = before[1][j]
                used.add(found[i].family)
                continue
        structure = fixed_points.template(points[i].searched, k, extra)
        start = path.end if path.reason else float(min(path.crossed))
        losses = _first_losses(points[i], k, extra, kernel, path, ahead[i] if ahead else None)
        named.append((name(structure, start, *losses), losses[0], i, path, start))
    missed: dict = {}
    for base, _, i, path, start in sorted(named, key=lambda item: item[:2]):
        rank = 1
        while _ranked(base, rank) in taken:
            rank += 1
        member = Member(_ranked(base, rank), start, path.reason or "floor")
        taken.add(member.family)
        found[i] = member
        for lower, theta in path.crossed.items():
            if lower < k:
                missed.setdefault(lower, []).append((member, at(points[i], k, lower, extra), theta))
    return found, missed


def _first_losses(point, k: int, extra: int, kernel: Any, back: Path, ahead: Path | None):
    """F at the first integer k of a point's curve, and at the next one where it starts at
    its floor: two curves leave a floor point (either of its two equal blocks may grow),
    with one loss there, and F one step on tells them apart whatever k they were found at."""
    crossed = dict(back.crossed)
    if ahead is not None and k + 1 in ahead.crossed:
        crossed[k + 1] = ahead.crossed[k + 1]
    first = min(crossed)
    at_floor = back.reason in ("", "floor")  # "": the point is at its floor already
    steps = (first, first + 1) if at_floor and first + 1 in crossed else (first,)
    return [reduced.value(at(point, k, j, extra), crossed[j], kernel) for j in steps]


@dataclass
class Stored:
    """A point as a table stores it (canonical weights): enough for `locate`."""

    weights: np.ndarray
    loss: float
    manifold_dimension: int


def records(table: pd.DataFrame) -> list[Stored]:
    """A written table's points, for `locate`."""
    return [Stored(np.reshape(row.weights, (row.n, row.d)), row.loss, row.manifold_dim)
            for row in table.itertuples()]  # fmt: skip


def stored(table: pd.DataFrame) -> tuple[list[Stored], list[Member]] | None:
    """The points and families of a written table (k - 1's, when a search resumes at k),
    for `members`; None where it has no families."""
    if "family" not in table or table["family"].isna().all():
        return None
    points = records(table)
    found = [Member(row.family, row.family_start, row.start_reason)
             for row in table.itertuples()]  # fmt: skip
    return points, found


def _ranked(base: str, rank: int) -> str:
    return base if rank == 1 else f"{base}/{rank}"


def name(structure: Structure, start: float, loss: float, *more: float) -> str:
    """A family's name: its pattern, the k where it starts (to 0.1) and F at the first
    integer k of its curve (4 digits; at a floor, also at the next): "31+k-31@61.4:0.1012",
    "31+k-31@62.0:0.1063,0.1071"."""
    losses = (0.0 if abs(x) < 1e-12 else x for x in (loss, *more))  # rounding's -2e-16 is 0
    return f"{pattern(structure)}@{start:.1f}:" + ",".join(f"{x:.4g}" for x in losses)


COLUMNS = ["family", "family_start", "start_reason", "family_end", "end_reason"]


def columns(found: list[Member], paths: list[Path]) -> dict:
    """The table's family columns: name, where the family starts (k, why), and where its
    curve ends after this k (NaN where it reaches k + 1; "fold" or "lost")."""
    return {
        "family": [m.family for m in found],
        "family_start": [m.start for m in found],
        "start_reason": [m.start_reason for m in found],
        "family_end": [p.end if p.reason else np.nan for p in paths],
        "end_reason": [p.reason for p in paths],
    }


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per family of a critical table: its k range, its losses at both ends,
    where it starts and ends (a fold, Newton losing it, its floor, or beyond the k
    searched) and its index along k ("0 (k 7..40), 1 (k 41..100)": a change of index is
    where a minimum turns into a saddle)."""
    rows = []
    for family, rows_of in table.dropna(subset=["family"]).groupby("family"):
        rows_of = rows_of.sort_values("k")
        first, last = rows_of.iloc[0], rows_of.iloc[-1]
        runs = []
        for k, index in zip(rows_of["k"], rows_of["index"], strict=True):
            if runs and runs[-1][0] == index and runs[-1][2] == k - 1:
                runs[-1][2] = k
            else:
                runs.append([index, k, k])
        ends = (
            ""
            if np.isnan(last["family_end"])
            else f"{last['end_reason']} at k = {last['family_end']:.2f}"
        )
        rows.append({
            "family": family, "first_k": int(first["k"]), "last_k": int(last["k"]),
            "loss_first": first["loss"], "loss_last": last["loss"],
            "starts": f"{first['start_reason']} at k = {first['family_start']:.2f}",
            "ends": ends or f"beyond k = {int(last['k'])}",
            "index": ", ".join(f"{i} (k {a}..{b})" if a != b else f"{i} (k {a})"
                               for i, a, b in runs),
            "minimum_at": ",".join(str(a) + ("" if a == b else f"..{b}")
                                   for i, a, b in runs if i == 0),
        })  # fmt: skip
    return pd.DataFrame(rows)
