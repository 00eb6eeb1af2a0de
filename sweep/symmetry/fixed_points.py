"""Critical points of F in fixed-point spaces, found by Newton from many starts.

For an isotropy type Delta(S_p1 x ... x S_pm) (p_1 + ... + p_m = k, n = k, or n = k + e
with e extra neurons of their own), Fix(G) has a handful of parameters whatever k is, and
a zero of the reduced gradient is a critical point of F (the principle of symmetric
criticality). Newton's method on the reduced gradient (`reduced.newton`) finds minima and
saddles alike, including those gradient descent never reaches. Types of one shape share
one compiled program: the sizes are arguments, not constants.
"""

import bisect
import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..limits import (
    CRITICAL_GRAD,
    DEGENERATE_POINT,
    NEWTON_POINT_SYMMETRY,
    PARALLEL_ROWS,
    SAME_POINT,
    SATURATED_ROW,
    ZERO_EIGENVALUE,
)
from . import isotypic, reduced
from .canonical import canonical_form, same_canonical, same_point
from .structure import Structure, detect


def template(sizes: tuple[int, ...], k: int, extra: int = 0) -> Structure:
    """Delta(S_p1 x ... x S_pm) at n = k + extra: factor f pairs rows and coordinates
    sum(p_<f) .. sum(p_<=f) - 1; each extra neuron is a factor of its own."""
    m = len(sizes)
    slots = np.repeat(np.arange(m), sizes)
    labels = np.concatenate([np.arange(p) for p in sizes])
    rows = np.concatenate([slots, m + np.arange(extra)])
    return Structure(k, tuple(sizes) + (1,) * extra, tuple(range(m + extra)), tuple(range(m)),
                     (True,) * m, rows, np.concatenate([labels, np.zeros(extra, int)]),
                     slots.copy(), labels.copy())  # fmt: skip


# Every three-block type is searched up to this k (about k^2 / 12 types: 75 at k = 30,
# 833 at k = 100); above it only the thin ones, p + 1 + q and p + 2 + q, which hold the
# three-block minima gradient descent reaches (and others come from `neighbours.py`).
TRIPLES_UP_TO = 30


def default_shapes(k: int) -> tuple[str, ...]:
    """The types `sweep critical` searches at k unless told: Delta S_k, every pair, and
    every triple up to TRIPLES_UP_TO, the thin triples above it."""
    return ("k", "pairs", "triples" if k <= TRIPLES_UP_TO else "thin")


def isotropy_types(k: int, shapes: tuple[str, ...] = ("k", "pairs", "triples")) -> list[tuple]:
    """The isotropy types to search at k: "k" (Delta S_k), "pairs" (every
    Delta(S_p x S_k-p)), "triples" (every Delta(S_p x S_q x S_r)), "thin" (the triples
    with a block of one or two neurons), or explicit sizes."""
    found = []
    for shape in shapes:
        if shape == "k":
            found.append((k,))
        elif shape == "pairs":
            found += [(p, k - p) for p in range(1, k // 2 + 1)]
        elif shape in ("triples", "thin"):
            found += [(p, q, k - p - q) for p in range(1, k // 3 + 1)
                      for q in range(p, (k - p) // 2 + 1)
                      if shape == "triples" or p <= 2]  # fmt: skip
        else:
            found.append(tuple(shape))
    return list(dict.fromkeys(found))


def _starts(structure: Structure, count: int, rng: np.random.Generator) -> np.ndarray:
    """Starts in Fix(G): a third from projected Xavier points, a third near the teacher,
    a third uniform in a box that holds the known critical points."""
    n, d = structure.shape
    m = len(structure.parameters)
    thirds = np.array_split(np.arange(count), 3)
    found = np.empty((count, m))
    for i in thirds[0]:
        found[i] = structure.theta(rng.standard_normal((n, d)) / np.sqrt(d))
    identity = structure.theta(np.eye(n, d))
    found[thirds[1]] = identity + rng.normal(0, 0.4, (len(thirds[1]), m))
    found[thirds[2]] = rng.uniform(-1.2, 1.2, (len(thirds[2]), m))
    return found


@functools.partial(jax.jit, static_argnames=("signature", "kernel", "steps"))
def _newton(thetas, sizes, k, signature, kernel, steps=60):
    def one(theta, size):
        return reduced.newton(theta, size, k, signature, steps=steps, kernel=kernel)

    return jax.vmap(one)(thetas, sizes)


@dataclass
class Point:
    """One distinct critical point: where it was found and what it is."""

    searched: tuple  # the type whose fixed-point space held it first
    weights: np.ndarray
    structure: Structure  # its own isotropy (may be larger than the searched type)
    loss: float
    blocks: list
    found: int = 1  # how many starts (over all searched types) ended there
    homogeneous: bool = True  # ReLU: parallel neurons can share their norm

    @property
    def zero(self) -> float:
        """How small an eigenvalue counts as zero: ZERO_EIGENVALUE for a smooth activation,
        whose degenerate points Newton locates to ~1e-5 only; 0 for ReLU, whose zero
        eigenvalues are a manifold's directions (`manifold_dimension`)."""
        return 0.0 if self.homogeneous else ZERO_EIGENVALUE

    @property
    def index(self) -> int:
        return isotypic.index(self.blocks, self.zero)

    @property
    def nullity(self) -> int:
        """Zero eigenvalues of a degenerate point (`zero`)."""
        return isotypic.nullity(self.blocks, self.zero)

    @functools.cached_property
    def manifold_dimension(self) -> int:
        """0 for an isolated point; else the dimension of the manifold of critical points
        with its network function that it lies on (`parallel_groups`); 0 for an activation
        that is not positively homogeneous, where parallel neurons share nothing."""
        if not self.homogeneous:
            return 0
        return sum(len(group) - 1 for group in parallel_groups(self.weights))


def parallel_groups(weights: np.ndarray, tol: float = PARALLEL_ROWS) -> list[list[int]]:
    """Groups of rows (neurons) pointing the same way. ReLU is positively homogeneous, so
    a u + b u = (a + b) u: the norm of a group of m such neurons can be shared among them
    in an (m - 1)-dimensional family of points with one network function, and if one of
    them is a critical point, all are (the gradient of each neuron depends on the
    function and its direction only)."""
    units = weights / np.linalg.norm(weights, axis=1, keepdims=True)
    close = 1 - units @ units.T < tol
    groups, placed = [], np.zeros(len(weights), bool)
    for i in range(len(weights)):
        if placed[i]:
            continue
        group = np.flatnonzero(close[i] & ~placed)  # every row before i is placed
        placed[group] = True
        groups.append([int(j) for j in group])
    return groups


def network_function(weights: np.ndarray) -> np.ndarray:
    """The point with each group of parallel neurons merged into one (the rest zero rows),
    in canonical form: equal for two points with one network function."""
    merged = np.zeros_like(weights)
    for row, group in enumerate(parallel_groups(weights)):
        merged[row] = weights[group].sum(axis=0)
    return canonical_form(merged)


def search(
    k: int, sizes_list: list[tuple], starts: int = 96, seed: int = 0, extra: int = 0,
    kernel: Any = None, seeds: dict | None = None,
) -> list[Point]:  # fmt: skip
    """Every distinct critical point the starts reach in the fixed-point spaces of these
    types at k, with its isotropy, loss and symmetry-adapted spectrum; `kernel`: another
    activation's (`objectives/kernels.py`), None for ReLU. `seeds`: more starts for some
    types, {sizes: parameters (m, p)} (points of neighbouring types, `neighbours.py`)."""
    return distinct(newton_ends(k, sizes_list, starts, seed, extra, kernel, seeds), k, kernel)


def newton_ends(k: int, sizes_list: list[tuple], starts: int = 96, seed: int = 0,
                extra: int = 0, kernel: Any = None, seeds: dict | None = None) -> list:  # fmt: skip
    """`search`'s Newton runs: (template, parameters, how many starts ended there) for
    each distinct zero of a reduced gradient reached."""
    rng = np.random.default_rng(seed)
    by_signature = defaultdict(list)
    for sizes in sizes_list:
        structure = template(sizes, k, extra)
        by_signature[structure.signature].append(structure)
    candidates = []
    for signature, group in by_signature.items():
        mine = [_starts(s, starts, rng) for s in group]
        if seeds:
            mine = [np.concatenate([m, np.reshape(seeds.get(s.sizes[: len(s.col_slots)], []),
                                                  (-1, m.shape[1]))])
                    for m, s in zip(mine, group, strict=True)]  # fmt: skip
        bounds = np.cumsum([0] + [len(m) for m in mine])
        if not bounds[-1]:
            continue
        thetas = np.concatenate(mine)
        sizes = np.concatenate([np.repeat([np.asarray(s.sizes, float)], len(m), axis=0)
                                for m, s in zip(mine, group, strict=True)])  # fmt: skip
        theta, norm = newton_in_batches(thetas, sizes, k, signature, kernel)
        for i, structure in enumerate(group):
            rows = slice(bounds[i], bounds[i + 1])
            good = np.isfinite(norm[rows]) & (norm[rows] < CRITICAL_GRAD)
            zeros, counts = np.unique(np.round(theta[rows][good], 9), axis=0,
                                      return_counts=True)  # fmt: skip
            for t, count in zip(zeros, counts, strict=True):
                candidates.append((structure, t, int(count)))
    return candidates


# Newton runs in batches of these sizes only (padded with copies of a batch's first
# start), so one compiled program per signature and size serves every type, every round
# of `neighbours.fill` and every k: compiling costs more than running at large k.
BATCHES = (32, 64, 128, 256)


def newton_in_batches(
    thetas, sizes, k, signature, kernel, steps: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """Newton (`steps` steps) on the reduced gradient of one signature from every start:
    `thetas` (m, p) with each start's block sizes `sizes` (m, factors; real numbers
    allowed, as `families.py` uses), run in batches of a size in BATCHES; returns the
    end points and their reduced gradient norms."""
    count = len(thetas)
    size = next((b for b in BATCHES if b >= count), BATCHES[-1])
    padded = -(-count // size) * size
    thetas = np.concatenate([thetas, np.repeat(thetas[:1], padded - count, axis=0)])
    sizes = np.concatenate([sizes, np.repeat(sizes[:1], padded - count, axis=0)])
    theta, norm = [], []
    with jax.enable_x64(True):
        for first in range(0, padded, size):
            batch = slice(first, first + size)
            t, g = _newton(jnp.asarray(thetas[batch]), jnp.asarray(sizes[batch]), float(k),
                           signature=signature, kernel=kernel, steps=steps)  # fmt: skip
            theta.append(np.asarray(t))
            norm.append(np.asarray(g))
    return np.concatenate(theta)[:count], np.concatenate(norm)[:count]


def distinct(candidates: list, k: int, kernel: Any = None) -> list[Point]:
    """One Point per distinct critical point among the candidates (`same_point`). Equal
    points have equal losses: only points whose losses differ by less than SAME_POINT are
    compared, found by bisection in a list sorted by loss."""
    points, losses, order = [], [], []  # order: indices into points, by loss
    canonical = []  # each point's canonical form, sorted once
    for structure, theta, count in candidates:
        weights = structure.point(theta)
        norms = np.linalg.norm(weights, axis=1)
        if kernel is None and np.min(norms) < 1e-6:
            continue  # a dead ReLU neuron: F is not differentiable there
        if kernel is not None and np.max(norms) > SATURATED_ROW:
            continue  # a saturated unit: the gradient vanishes only in the limit
        loss = reduced.value(structure, theta, kernel)
        low = bisect.bisect_left(losses, loss - SAME_POINT)
        high = bisect.bisect_right(losses, loss + SAME_POINT)
        mine = canonical_form(weights)
        for i in order[low:high]:
            if same_canonical(canonical[i], mine):
                points[i].found += count
                break
        else:
            searched = tuple(structure.sizes[: len(structure.col_slots)])
            point = _described(searched, structure, weights, loss, count, kernel)
            for i in order[low:high] if point.nullity and not point.manifold_dimension else ():
                if points[i].nullity and same_point(points[i].weights, weights, DEGENERATE_POINT):
                    points[i].found += count
                    break
            else:
                place = bisect.bisect_right(losses, loss)
                losses.insert(place, loss)
                order.insert(place, len(points))
                points.append(point)
                canonical.append(canonical_form(point.weights))
    # Points a random start reached stand for their network function before points
    # reached from a neighbour's point only (`neighbours.py`), so those never displace them.
    chosen = _one_per_function(sorted(points, key=lambda p: (p.found == 0, p.loss, p.index)))
    return sorted(chosen, key=lambda p: (p.loss, p.index))


def _described(searched: tuple, structure: Structure, weights: np.ndarray, loss: float,
               count: int, kernel: Any) -> Point:  # fmt: skip
    """A new point with its isotropy and spectrum. A degenerate point is known to ~1e-5
    only: its isotropy is sought with DEGENERATE_POINT, and the point made exactly
    symmetric under the group found."""
    own = detect(weights, structure.k, tol=NEWTON_POINT_SYMMETRY)
    if own.log_order < structure.log_order:
        own = structure  # colour refinement missed a symmetry (two equal blocks)
    point = Point(searched, weights, own, loss, isotypic.spectrum(own, weights, kernel), count,
                  homogeneous=_homogeneous(kernel))  # fmt: skip
    if not point.nullity or point.manifold_dimension:
        return point
    wider = detect(weights, structure.k, tol=DEGENERATE_POINT)
    if wider.log_order <= own.log_order:
        return point
    weights = wider.point(wider.theta(weights))
    loss = reduced.value(wider, wider.theta(weights), kernel)
    blocks = isotypic.spectrum(wider, weights, kernel)
    return Point(searched, weights, wider, loss, blocks, count, _homogeneous(kernel))


def _homogeneous(kernel: Any) -> bool:
    """ReLU (None) and its kin: positively homogeneous (`kernels.py`)."""
    return kernel is None or getattr(kernel, "homogeneous", False)


def _one_per_function(points: list[Point]) -> list[Point]:
    """Points of one network function (parallel neurons sharing their norm differently)
    are one family: the first in `points`' order stands for it, with every start that
    reached one of them."""
    kept, functions = [], []
    for point in points:
        if point.manifold_dimension:
            function = network_function(point.weights)
            for other, theirs in zip(kept, functions, strict=True):
                # one network function has one loss: compare only points of equal loss
                if (theirs is not None and abs(other.loss - point.loss) < SAME_POINT
                        and same_point(theirs, function)):  # fmt: skip
                    other.found += point.found
                    break
            else:
                kept.append(point)
                functions.append(function)
            continue
        kept.append(point)
        functions.append(None)
    return kept
