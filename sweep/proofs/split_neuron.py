"""Splitting a neuron: whether a minimum W of n neurons stays a minimum of n + 1 when one of
its neurons w is shared between two, (lam w, (1 - lam) w) with 0 < lam < 1 (any n >= k).

ReLU is positively homogeneous, so the network function and F do not change: every such
point is critical, on a segment of parallel neurons. Move the two apart along a unit u
with u . w = 0, (lam w + t u, (1 - lam) w - t u). With s = w . x and e = u . x the output
changes by

    Delta(x) = relu(lam s + t e) + relu((1 - lam) s - t e) - relu(s),   0 <= Delta <= t |e|,

nonzero only where |s| <= t |e| / m (m = min(lam, 1 - lam)), with integral over s exactly
(t e)^2 / (2 lam (1 - lam)). Under Gaussian inputs s is independent of x's projection P x
onto w's hyperplane, and e is a function of P x. With h = f_W - f_V the residual, F's
change E[h Delta] + E[Delta^2] / 2 is bounded, splitting h(x) = h(P x) + (h(x) - h(P x))
(|h(x) - h(Px)| <= L |s| / |w|, L = sum |w_i| + sum |v_j|) and the density of s
(p(0) (1 - s^2 / 2|w|^2) <= p(s) <= p(0), p(0) = 1 / (sqrt(2 pi) |w|)), by

    F(split + t u) - F(W) <= t^2 / (lam (1 - lam)) (Q + t R1 + t^2 R2),
    Q = u^T C u = sum_i c(P w_i) - sum_j c(P v_j),  c(a) = (|a| + (a . u)^2 / |a|) / (4 pi |w|),
    R1 = p(0) E|e|^3 (L / (|w| m) + 1/2) / 2,  R2 = p(0) L sqrt(105 (d - 1)) / (4 |w|^2 m^2),

from E[relu(a . z) e^2] = (|a| + (a . u)^2 / |a|) / sqrt(2 pi) for z standard normal on
the hyperplane, E|e|^3 = 2 sqrt(2 / pi), E[e^8] = 105 and |h(z)| <= L |z|. Where Q < 0, F
falls for every 0 < t < t*(lam): for every lam the split point is not a local minimum.
Q is enclosed in Arb over the box that W's own proof put the exact minimum in (with u
made orthogonal to each w of the box); floats only choose u.
"""

import numpy as np
from flint import arb

from .balls import precision, upper
from .certificate import Certificate
from .enclosures import balls, teacher
from .extra_neuron import GLOBAL  # one threshold for F = 0: the residual is 0 there


def curvature_matrix(weights: np.ndarray, k: int, neuron: int) -> np.ndarray:
    """C, in floats: F(split + t u) - F(W) = t^2 / (lam (1 - lam)) u^T C u + O(t^3) for
    splitting `neuron` along a unit u orthogonal to it."""
    w = weights[neuron]
    norm = np.linalg.norm(w)
    projector = np.eye(len(w)) - np.outer(w, w) / norm**2
    total = np.zeros((len(w), len(w)))
    for rows, sign in ((weights, 1.0), (np.eye(k, len(w)), -1.0)):
        for row in rows:
            a = projector @ row
            size = np.linalg.norm(a)
            if size > 1e-12 * max(1.0, np.linalg.norm(row)):
                total += sign * (size * projector + np.outer(a, a) / size)
    return projector @ total @ projector / (4 * np.pi * norm)


def direction(weights: np.ndarray, k: int, neuron: int) -> tuple[np.ndarray, float]:
    """The unit u orthogonal to the neuron with the smallest u^T C u, and that value."""
    basis = np.linalg.svd(weights[neuron][None, :])[2][1:]  # w's hyperplane
    values, vectors = np.linalg.eigh(basis @ curvature_matrix(weights, k, neuron) @ basis.T)
    return basis.T @ vectors[:, 0], float(values[0])


def prove_descent(centre: np.ndarray, radius: float, k: int, neuron: int,
                  u: np.ndarray) -> float:  # fmt: skip
    """An upper bound of Q over the box centre + [-radius, radius]^(n x d) (Arb), u made
    orthogonal to the neuron at each point of it: where negative, splitting that neuron
    of no point of the box gives a local minimum, whatever lam."""
    with precision(128):
        rows = balls(centre, radius)
        w = rows[neuron]
        square = sum((x * x for x in w), arb(0))

        def project(row):
            along = sum((a * b for a, b in zip(w, row, strict=True)), arb(0)) / square
            return [b - along * a for a, b in zip(w, row, strict=True)]

        u_ = project([arb(float(x)) for x in u])
        size = sum((x * x for x in u_), arb(0)).sqrt()
        u_ = [x / size for x in u_]
        total = arb(0)
        others = [row for i, row in enumerate(rows) if i != neuron]  # w itself: P w = 0
        for group, sign in ((others, 1), (teacher(k, len(u)), -1)):
            for row in group:
                a = project(row)
                length = sum((x * x for x in a), arb(0)).sqrt()
                if not length > 0:
                    return np.inf  # a row parallel to w within the box: no bound here
                along = sum((x * y for x, y in zip(a, u_, strict=True)), arb(0))
                total += sign * (length + along * along / length)
        return upper(total / (4 * arb.pi() * square.sqrt()))


def fate(certificate: Certificate | None, k: int, loss: float,
         orbits: list[list[int]] | None = None) -> tuple[str, float]:  # fmt: skip
    """What splitting a neuron does to a proved minimum of n neurons: ("global", nan) at
    F = 0; ("not a minimum", the largest over the neurons of Q's upper bound) where every
    neuron's split is proved to descend; ("not a minimum for i of n neurons", ...) where
    some are; ("no descent found", the smallest bound) where none is. `orbits`: rows
    that the point's symmetry maps onto each other (one is proved for all; default: each
    row alone)."""
    if loss < GLOBAL:
        return "global", np.nan
    centre = certificate.centre
    orbits = orbits or [[i] for i in range(len(centre))]
    bounds = np.array([prove_descent(centre, certificate.radius, k, rows[0],
                                     direction(centre, k, rows[0])[0])
                       for rows in orbits])  # fmt: skip
    sizes = np.array([len(rows) for rows in orbits])
    falling = int(sizes[bounds < 0].sum())
    if falling == sizes.sum():
        return "not a minimum", float(bounds.max())
    if falling:
        return f"not a minimum for {falling} of {sizes.sum()} neurons", float(bounds.max())
    return "no descent found", float(bounds.min())


def orbits(row_slot: np.ndarray) -> list[list[int]]:
    """The rows of each slot of a point's isotropy (`Structure.row_slot`): one orbit."""
    return [list(np.flatnonzero(row_slot == slot)) for slot in np.unique(row_slot)]
