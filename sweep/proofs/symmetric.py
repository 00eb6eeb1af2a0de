"""A proof for a point with a symmetry group G, at a cost that does not grow with k.

Route (docs: Proofs), every inequality decided on Arb balls:

  1. Existence in Fix(G). The point's parameters theta (`symmetry/structure.py`) are
     refined by Newton in float64; Theta = theta_c + [-r, r]^m. Krawczyk's test on the
     reduced gradient E^T grad F(W(theta)) (E the 0/1 basis of Fix(G)), with its Jacobian
     enclosed over Theta by second-order jets in ball arithmetic (`symmetry/jets.py`),
     proves a unique zero w* of it in Theta. grad F is G-equivariant, so at a fixed point
     it lies in Fix(G), and E^T grad F = 0 means grad F = 0: w* is a critical point of F
     (the principle of symmetric criticality).
  2. Inertia by isotypic blocks. For each component of `symmetry/isotypic.py`, the copies'
     matrix M = X^T H X and Gram matrix S = X^T X are enclosed over Theta (M from the
     reduced Hessian of Fix(K) in jets, S exactly). The eigenvalues of H on the component
     are those of the pencil (M, S); the number below sigma is the number of negative
     eigenvalues of M - sigma S (Sylvester), counted from Gershgorin discs after a float
     congruence. Counts equal at -t, 0 and t prove every eigenvalue of H(w*) at least t
     away from 0; the sum of counts times dimensions is the index.
  3. The loss. F(w*) is enclosed by F(theta_c) + grad F(Theta) . (Theta - theta_c).
  4. A full-space region. For the box B = W(theta_c) + [-R, R]^(n d): the Hessian's
     pair blocks are enclosed over B for one pair per orbit of G on pairs (a permutation
     maps a pair's enclosure onto the other pairs' of its orbit), which bounds
     ||H(w) - H(w*)||_2 <= 2 max_row sum_j rad(H(B))_ij = 2 rho for every w in B. If
     2 rho < t, every H(w) on B is nonsingular with the inertia of H(w*), and
     grad F(w) - grad F(w') = (H(w*) + E)(w - w') with ||E|| < t: w* is the only critical
     point of F in B, a strict minimum when the index is 0.

Steps 1-3 cost a few thousand jet operations on matrices of size dim Fix(K) (at most a
few dozen), whatever k; step 4 costs one d x d block per orbit of pairs, O(d^2) each.
"""

import time

import numpy as np
from flint import arb, arb_mat

from ..limits import FIX_FOR_PROOF, MAX_MOVE, SMALLEST_RADIUS
from ..outcomes import PointKind
from ..symmetry import isotypic, jets, reduced
from ..symmetry.structure import Structure
from . import enclosures as E
from .balls import (
    count_below,
    is_finite,
    krawczyk,
    lower,
    mid_matrix,
    precision,
    row_radius,
    upper,
)  # fmt: skip
from .certificate import Certificate


class BallScalars:
    """`jets` scalar functions on Arb balls, with the kernel's terms from the angle."""

    pi = arb.pi()

    @staticmethod
    def sqrt(x):
        return x.sqrt()

    @staticmethod
    def acos(c):
        return E.angle(c)

    @staticmethod
    def sine(c):
        return E.angle(c).sin()

    @staticmethod
    def curvature(c):
        return 1 / E.angle(c).sin()  # not finite where the ball reaches parallel vectors


def _jet(structure: Structure, theta: np.ndarray, radius: float) -> jets.Jet:
    """F over the box theta + [-radius, radius]^m, with its gradient and Hessian."""
    m = len(theta)
    point = [
        jets.Jet(arb(float(t), radius), arb_mat(1, m, [int(a == i) for a in range(m)]),
                 arb_mat(m, m), BallScalars)
        for i, t in enumerate(theta)
    ]  # fmt: skip
    arithmetic = jets.JetArithmetic(BallScalars)
    return reduced.loss(structure.signature, structure.sizes, structure.k, point, arithmetic)


def krawczyk_in_fix(structure: Structure, centre: np.ndarray, radius: float) -> tuple[bool, float]:
    """Step 1: whether K(Theta) lies strictly inside Theta."""
    box = _jet(structure, centre, radius)
    if not is_finite(box.hess):
        return False, np.inf
    return krawczyk(_jet(structure, centre, 0.0).grad.transpose(), box.hess, radius)


def _pencil_counts(matrix: arb_mat, gram: np.ndarray, shifts: list[float]) -> list | None:
    """Eigenvalues of the pencil (matrix, gram) below each shift, or None where the
    Gershgorin discs do not decide a count."""
    mid = mid_matrix(matrix)
    # A float congruence that nearly diagonalises the pencil: T = L^-T V.
    lower = np.linalg.cholesky(gram)
    inverse = np.linalg.inv(lower)
    _, vectors = np.linalg.eigh(inverse @ mid @ inverse.T)
    basis = arb_mat((inverse.T @ vectors).tolist())
    gram_balls = arb_mat(gram.tolist())
    # M - shift S has as many negative eigenvalues as the pencil has below the shift.
    counts = [count_below(matrix - gram_balls * arb(shift), basis, 0.0) for shift in shifts]
    return None if None in counts else counts


def _blocks(structure: Structure, centre: np.ndarray, radius: float):
    """Step 2: (index, proven gap t, lower bound of lambda_min or nan, why)."""
    weights = structure.point(centre)
    index, gap, low = 0, np.inf, np.inf
    for component in isotypic.components(structure):
        fixed, copies = isotypic.coordinates(component, structure)
        inner = _jet(fixed, fixed.theta(weights), radius).hess
        if not is_finite(inner):
            return -1, 0.0, np.nan, f"{component.name}: a neuron parallel to another on the box"
        c = arb_mat(copies.tolist())
        matrix = c * inner * c.transpose()
        gram = copies @ np.diag(fixed.counts().astype(float)) @ copies.T
        lower = np.linalg.inv(np.linalg.cholesky(gram))
        values = np.linalg.eigvalsh(lower @ mid_matrix(matrix) @ lower.T)
        t = float(np.min(np.abs(values))) * (1 - 1e-4)
        for _ in range(20):
            counts = _pencil_counts(matrix, gram, [-t, t])
            if counts is not None and counts[0] == counts[1]:
                break
            t /= 2
        else:
            return -1, 0.0, np.nan, f"{component.name}: its block's signs are not decided"
        index += component.dimension * counts[0]
        gap = min(gap, t)
        if counts[0] == 0:
            sigma = float(values[0]) * (1 - 1e-4)
            proven = _pencil_counts(matrix, gram, [sigma])
            low = min(low, sigma if proven == [0] else t)
    return index, gap, (low if index == 0 else np.nan), ""


def _spread(structure: Structure, centre: np.ndarray, radius: float) -> float:
    """Step 4: rho, a bound of max_row sum_j rad(H(B))_ij over the full box B."""
    weights = structure.point(centre)
    n, d = weights.shape
    k = structure.k
    rows = [E.Vector.of([arb(float(x), radius) for x in row]) for row in weights]
    teachers = [E.Vector.of(row) for row in E.teacher(k, d)]
    worst = arb(0)
    for r in range(len(structure.row_slots)):
        i = int(np.flatnonzero((structure.row_slot == r) & (structure.row_label == 0))[0])
        total = arb(0)
        for j, count in _orbits(structure, i, structure.row_slot, structure.row_label,
                                structure.row_slots):  # fmt: skip
            if j == i:
                continue
            pair = E.Pair.of(rows[i], rows[j])
            total += count * (row_radius(E.dh_dw(rows[i], rows[j], pair))
                              + row_radius(E.dh_dv(rows[i], rows[j], pair)))  # fmt: skip
        teacher_cols = structure.col_slot[:k]
        for t, count in _orbits(structure, i, teacher_cols, structure.col_label[:k],
                                structure.col_slots):  # fmt: skip
            pair = E.Pair.of(rows[i], teachers[t])
            total += count * row_radius(E.dh_dw(rows[i], teachers[t], pair))
        worst = worst.max(total) if worst.is_finite() else worst
    return upper(worst)


def _orbits(structure: Structure, i: int, slot_of, label_of, slots):
    """(representative, size) of the orbits, under the stabiliser of row i, of the
    indices described by slot_of, label_of (rows or teacher columns)."""
    factor = structure.row_slots[structure.row_slot[i]]
    own = structure.row_label[i]
    found = []
    for s in np.unique(slot_of):
        members = np.flatnonzero(slot_of == s)
        if slots[s] == factor:
            same = members[label_of[members] == own]
            other = members[label_of[members] != own]
            found += [(int(same[0]), 1)] + ([(int(other[0]), len(other))] if len(other) else [])
        else:
            found.append((int(members[0]), len(members)))
    return found


def certify_symmetric(
    weights: np.ndarray,
    structure: Structure,
    radius: float = SMALLEST_RADIUS,
    max_move: float = MAX_MOVE,
    bits: int = 128,
) -> Certificate:
    """Prove what the critical point of F near `weights` (n, d), fixed by `structure`'s
    group, is; the region of step 4 is the box of `radius` around it, or a smaller one
    (by tenths, down to Theta's 1e-12) where the larger cannot be shown free of other
    critical points. The certificate's radius is the one proved."""
    try:
        return _certify(weights, structure, radius, max_move, bits)
    except (np.linalg.LinAlgError, ZeroDivisionError) as error:
        # A singular reduced Hessian or Gram matrix: nothing can be decided here.
        return Certificate.failed(f"singular in Fix(G) ({error})", radius, weights, 0.0)


def _certify(weights, structure, radius, max_move, bits) -> Certificate:
    start = time.perf_counter()
    weights = np.asarray(weights, float)
    largest = max(len(structure.split(c.marked).parameters)
                  for c in isotypic.components(structure))  # fmt: skip
    if largest > FIX_FOR_PROOF:
        return Certificate.failed(f"the group is too small to help: a fixed-point space of "
                                  f"{largest} parameters", radius, weights,
                                  time.perf_counter() - start)  # fmt: skip
    with precision(bits):
        centre = reduced.polish(structure, structure.theta(weights))
        point = structure.point(centre)
        moved = float(np.max(np.abs(point - weights)))

        def failed(reason):
            return Certificate.failed(reason, radius, point, time.perf_counter() - start,
                                      moved < radius)  # fmt: skip

        if not moved <= max_move:
            return failed(
                f"not a critical point near the stored point (Newton moves it {moved:.2g})"
            )
        # Theta as small as Krawczyk allows: the float centre is off by about
        # |grad| / lambda_min, which a nearly flat direction makes larger than 1e-12.
        for inner in (1e-12, 1e-11, 1e-10, 1e-9):
            inside, worst = krawczyk_in_fix(structure, centre, inner)
            if inside or not np.isfinite(worst):
                break
        if not inside:
            return failed(
                f"Krawczyk in Fix(G): K reaches {worst:.3g} from the centre, beyond {inner:.3g}"
            )
        negative, gap, min_eig_low, why = _blocks(structure, centre, inner)
        if negative < 0:
            return failed(why)
        # The largest box of radius <= `radius` (down to Theta's) where step 4 holds.
        region = radius
        while True:
            rho = _spread(structure, centre, region)
            if 2 * rho < gap or region <= inner:
                break
            region = max(region / 10, inner)
        if not 2 * rho < gap:
            return failed(
                f"the Hessian may move by {2 * rho:.3g} on the box, more than its gap {gap:.3g}"
            )
        # F(w*) in F(theta_c) + grad F(Theta) . [-r, r]^m (the mean value theorem).
        slope = _jet(structure, centre, inner).grad
        loss = _jet(structure, centre, 0.0).value + arb(
            0, upper(sum((abs(slope[0, i]) for i in range(slope.ncols())), arb(0)) * inner)
        )
    return Certificate(
        proved=True,
        kind=PointKind.of_index(negative),
        reason="",
        radius=region,
        centre=point,
        loss_low=lower(loss),
        loss_high=upper(loss),
        min_eig_low=lower(arb(min_eig_low) - arb(2 * rho)) if negative == 0 else np.nan,
        negative=negative,
        contains_stored=moved < region,
        seconds=time.perf_counter() - start,
    )
