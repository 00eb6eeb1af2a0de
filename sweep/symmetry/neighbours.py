"""More Newton starts from the critical points already found: a point of one isotropy type
is a good start in the types next to it.

The reduced loss (`reduced.py`) has the block sizes as numbers in its formula, so a
critical point of Delta(S_p x S_q) moves little when one neuron (with its coordinate)
passes from one block to the next, Delta(S_p+1 x S_q-1), or when k grows by one and a
block with it, Delta(S_p+1 x S_q) at k + 1. Random starts (`fixed_points._starts`) find
most points of a type; what they miss at large k (a basin too small for 96 starts) is
often the continuation of a point they found in a neighbouring type. `fill` seeds every
neighbouring type with the points found, then with the points those seeds find, until
no new point appears; `grown` carries the points of k to k + 1 (`sweep critical` does so
for every k of a range).

Only moves between types of one signature (the same blocks of size one) are made: the
parameters of two such types mean the same entries of W.
"""

from collections import defaultdict
from typing import Any

import numpy as np

from . import fixed_points, reduced

# A flood over the types of one k stops after this many rounds (each round seeds the
# neighbours of the points the previous one found).
ROUNDS = 60
# Only points of at most this index in their own fixed-point space seed other types:
# minima lie next to minima and index-1 saddles; seeding from every point would find (and
# spend its time on) many more high-index saddles.
MAX_INDEX = 1


def _same_ones(a: tuple, b: tuple) -> bool:
    return [p == 1 for p in a] == [p == 1 for p in b]


def moves(sizes: tuple) -> list[tuple]:
    """The types at the same k one neuron away: one block one larger, another one smaller,
    the blocks still in ascending order, the same blocks of size one."""
    found = []
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            if i == j:
                continue
            moved = list(sizes)
            moved[i] += 1
            moved[j] -= 1
            moved = tuple(moved)
            if moved == tuple(sorted(moved)) and _same_ones(moved, sizes):
                found.append(moved)
    return found


def grown(sizes: tuple) -> list[tuple]:
    """The types at k + 1 with one block one larger (ascending, same blocks of size one)."""
    found = []
    for i in range(len(sizes)):
        bigger = tuple(p + (j == i) for j, p in enumerate(sizes))
        if bigger == tuple(sorted(bigger)) and _same_ones(bigger, sizes):
            found.append(bigger)
    return found


def split(sizes: tuple, parts: tuple = (1, 2)) -> list[tuple[tuple, list[int]]]:
    """The types with `parts` neurons split off one block: (type, order), `order` the
    blocks' positions (in the old point's rows and columns) that the new type's template
    takes, blocks ascending. Fix(old) lies in Fix(new): the old points are new points."""
    found = []
    starts = np.cumsum((0,) + sizes)
    for i, p in enumerate(sizes):
        for part in parts:
            if p - part < 1:
                continue
            pieces = [(q, list(range(starts[j], starts[j + 1]))) for j, q in enumerate(sizes)
                      if j != i]  # fmt: skip
            block = list(range(starts[i], starts[i + 1]))
            pieces += [(part, block[:part]), (p - part, block[part:])]
            pieces.sort(key=lambda piece: piece[0])
            found.append((tuple(q for q, _ in pieces), [x for _, xs in pieces for x in xs]))
    return found


def split_seeds(candidates: list, allowed: set, extra: int, spread: float = 0.05,
                copies: int = 4, seed: int = 0, kernel: Any = None) -> dict:  # fmt: skip
    """{type: parameters}: each candidate's point (of index at most MAX_INDEX in its own
    fixed-point space) as a start in every allowed type that splits one or two neurons
    off one of its blocks, with `copies` small random moves off the old type's space (on
    it Newton would stay: symmetric criticality)."""
    rng = np.random.default_rng(seed)
    seeds = defaultdict(list)
    for structure, theta, _ in candidates:
        if not low_index((structure, theta, 0), kernel):
            continue
        weights = structure.point(theta)
        k = len(structure.col_slot)
        for sizes, order in split(_searched((structure, theta, 0))):
            if sizes not in allowed:
                continue
            rows = order + list(range(k, k + extra))
            new = fixed_points.template(sizes, k, extra)
            start = new.theta(weights[np.ix_(rows, order)])
            moves = rng.normal(0.0, spread, (copies, len(start)))
            seeds[sizes] += list(start + moves)
    return {sizes: np.array(thetas) for sizes, thetas in seeds.items()}


def _key(candidate: tuple) -> tuple:
    structure, theta, _ = candidate
    return structure.sizes, tuple(np.round(theta, 7))


def _searched(candidate: tuple) -> tuple:
    structure = candidate[0]
    return structure.sizes[: len(structure.col_slots)]


def low_index(candidate: tuple, kernel: Any = None) -> bool:
    """Whether a Newton end has at most MAX_INDEX negative eigenvalues in its own
    fixed-point space (the reduced Hessian: milliseconds)."""
    structure, theta, _ = candidate
    with np.errstate(divide="ignore", invalid="ignore"):
        hessian = reduced.hessian(structure, theta, kernel)
    if not np.all(np.isfinite(hessian)):
        return False  # a neuron at zero: F has no Hessian there (ReLU)
    return int(np.sum(np.linalg.eigvalsh(hessian) < 0)) <= MAX_INDEX


def seeds_for(candidates: list, step, allowed: set, kernel: Any = None) -> dict:
    """{type: parameters} of the neighbours (`step`: `moves` or `grown`) that are
    `allowed` of each candidate's type, from the candidates of low index (`low_index`)."""
    seeds = defaultdict(list)
    for candidate in candidates:
        targets = [t for t in step(_searched(candidate)) if t in allowed]
        if not targets or not low_index(candidate, kernel):
            continue
        for target in targets:
            if target in allowed:
                seeds[target].append(candidate[1])
    return {sizes: np.array(thetas) for sizes, thetas in seeds.items()}


def fill(k: int, types: list[tuple], candidates: list, extra: int = 0, kernel: Any = None,
         seeds: dict | None = None, frontier: list | None = None) -> list:  # fmt: skip
    """`candidates` (`fixed_points.newton_ends`) with every point Newton reaches from
    `seeds` and from the neighbours in `types` of `frontier` (default: every candidate),
    then of the points those reach, round after round. A point reached only this way
    counts no start (its `found` stays what random starts gave)."""
    allowed = set(types)
    known = {_key(c) for c in candidates}
    found = list(candidates)
    frontier = list(candidates) if frontier is None else frontier
    pending = dict(seeds or {})
    for _ in range(ROUNDS):
        for sizes, thetas in seeds_for(frontier, moves, allowed, kernel).items():
            pending[sizes] = (
                np.concatenate([pending[sizes], thetas]) if sizes in pending else thetas
            )
        if not pending:
            break
        ends = fixed_points.newton_ends(k, list(pending), 0, extra=extra, kernel=kernel,
                                        seeds=pending)  # fmt: skip
        frontier = [(s, theta, 0) for s, theta, _ in ends if _key((s, theta, 0)) not in known]
        known |= {_key(c) for c in frontier}
        found += frontier
        pending = {}
    return found
