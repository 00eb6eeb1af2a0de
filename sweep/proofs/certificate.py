"""A computer-assisted proof of what a critical point of the closed-form loss F is.

Route (docs: Proofs): a Krawczyk test on the gradient, then the inertia
of the Hessian over the whole box, then an enclosure of F. Every inequality is decided on
Arb balls (`enclosures.py`); floating-point numbers only choose where to look (the box
centre, the preconditioner Y, the approximate eigenvectors V), which any choice would.

  1. Centre. The stored point w0 is refined by Newton steps in ball arithmetic; a centre c
     more than `max_move` from w0 fails ("not a critical point near the stored point").
  2. Existence and uniqueness (Krawczyk). X = c + [-r, r]^N. If
     K(X) - c = -Y g(c) + (I - Y H(X)) (X - c) lies inside (-r, r)^N, X holds exactly one
     zero of the gradient, w*.
  3. Inertia on the whole box. A = mid H(X), R = |H(X) - A| entrywise, so every Hessian
     H' over X has ||H' - A||_2 <= ||R||_inf =: rho (R is symmetric). For shifts s, the
     congruence V^T (A - s I) V is computed in balls; when none of its Gershgorin discs
     contains 0, the signs of the discs count the eigenvalues of A below s (a homotopy to
     the diagonal keeps it nonsingular; Sylvester's law of inertia, V is then nonsingular).
     Equal counts m at s = -tau and s = +tau with tau > rho mean every H' over X has
     exactly m negative eigenvalues (Weyl). m = 0: H' is positive definite, and a shift
     sigma with count 0 gives lambda_min(H') >= sigma - rho. m >= 1: a saddle.
  4. The loss. F(X) lies in F(c) + g(c) . [-r, r]^N + 1/2 |H(X)| r^2 (Taylor with the
     Lagrange remainder). For a minimum with F > 0 on X it is spurious: F >= 0 everywhere
     and F = 0 at the teacher.

Why this route rather than Safran & Shamir's (a gradient bound, a Hessian bound and a
hand-derived Lipschitz constant of the Hessian on a ball): the one enclosure H(X) of the
analytic Hessian over the box serves both the existence proof and the curvature on the
whole box, with no constant to derive per k, and the box can be as small as the runs
allow (1e-9), where the enclosures are tight. Cost: H(X) has (n d)^2 entries built from
n (n + k) pair blocks in Python-level ball arithmetic, O(k^4); the matrix products of
steps 2 and 3 are O(k^6) but run in Arb's C code (a 400 x 400 product takes ~0.1 s).
"""

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from flint import arb, arb_mat

from ..outcomes import PointKind
from . import enclosures as E
from .balls import count_below, krawczyk, lower, mid_matrix, midpoints, precision, upper


class Landscape(Protocol):
    """Enclosures of a loss over balls of weights (n, d), teacher [I_k 0]."""

    def loss(self, weights: E.Balls, k: int) -> arb: ...
    def gradient(self, weights: E.Balls, k: int) -> list: ...
    def hessian(self, weights: E.Balls, k: int) -> arb_mat: ...


@dataclass(frozen=True)
class Certificate:
    """What was proved about one stored point (`proved` False: nothing is claimed)."""

    proved: bool
    kind: PointKind | None  # None when not proved
    reason: str  # why not proved ("" when proved)
    radius: float  # r: the box is centre + [-r, r]^N
    centre: np.ndarray  # the box centre (float64 rounding of the refined point)
    loss_low: float  # F over the box lies in [loss_low, loss_high] (rounded outward)
    loss_high: float
    min_eig_low: float  # minima: a lower bound of the smallest Hessian eigenvalue on the box
    negative: int  # Hessian eigenvalues below 0 on the whole box (-1: not proved)
    contains_stored: bool  # the stored point lies in the box
    seconds: float
    route: str = ""  # which proof: "symmetric" (in Fix(G)) or "full space" (`pipeline.py`)

    @staticmethod
    def failed(
        reason: str, radius: float, centre: np.ndarray, seconds: float,
        contains_stored: bool = False,
    ) -> "Certificate":  # fmt: skip
        """A certificate that claims nothing, with the reason why."""
        return Certificate(
            proved=False, kind=None, reason=reason, radius=radius,
            centre=np.asarray(centre, float), loss_low=np.nan, loss_high=np.nan,
            min_eig_low=np.nan, negative=-1, contains_stored=contains_stored, seconds=seconds,
        )  # fmt: skip


def _refine(weights: np.ndarray, k: int, landscape: Landscape, steps: int) -> list:
    """Newton steps from the stored point, in balls; returns the centre's rows (exact)."""
    n, d = weights.shape
    centre = E.balls(weights)
    for _ in range(steps):
        hessian = landscape.hessian(centre, k)
        step = np.linalg.solve(mid_matrix(hessian), midpoints(landscape.gradient(centre, k)))
        flat = [x - float(s) for x, s in zip(E.flat(centre), step, strict=True)]
        centre = [[flat[i * d + a].mid() for a in range(d)] for i in range(n)]
    return centre


def _inertia(hessian: arb_mat):
    """Step 3: (negative count on the whole box, lower bound of lambda_min or nan, why)."""
    size = hessian.nrows()
    middle = arb_mat([[hessian[i, j].mid() for j in range(size)] for i in range(size)])
    spread = max(
        upper(sum((arb(hessian[i, j].rad()) for j in range(size)), arb(0))) for i in range(size)
    )
    eigenvalues, vectors = np.linalg.eigh(mid_matrix(middle))
    basis = arb_mat(vectors.tolist())
    gap = float(np.min(np.abs(eigenvalues)))
    tau = spread * 2 + 1e-12 * max(1.0, float(np.max(np.abs(eigenvalues))))
    if tau >= gap:
        return -1, np.nan, f"an eigenvalue within {tau:.2g} of 0: the box is too wide to decide"
    low, high = count_below(middle, basis, -tau), count_below(middle, basis, tau)
    if low is None or high is None or low != high:
        return -1, np.nan, "the Gershgorin discs of the congruent Hessian do not decide its signs"
    if low > 0:
        return low, np.nan, ""
    sigma = float(eigenvalues[0]) * (1 - 1e-6)
    if count_below(middle, basis, sigma) != 0:
        sigma = tau  # proven above: no eigenvalue below tau
    return 0, lower(arb(sigma) - arb(spread)), ""


def _loss(centre: list, hessian: arb_mat, k: int, landscape: Landscape, r: float) -> arb:
    """Step 4: an enclosure of F on the box."""
    size = hessian.nrows()
    g = landscape.gradient(centre, k)
    linear = sum((abs(x) for x in g), arb(0)) * r
    quadratic = sum((abs(hessian[i, j]) for i in range(size) for j in range(size)), arb(0))
    quadratic = quadratic * r * r / 2
    return landscape.loss(centre, k) + arb(0, upper(linear + quadratic))


def certify(
    weights: np.ndarray,
    k: int,
    alpha: float = 0.0,
    radius: float = 1e-9,
    max_move: float = 1e-6,
    bits: int = 128,
    landscape: Landscape | None = None,
) -> Certificate:
    """Prove what the critical point of F near `weights` (n, d) is, teacher [I_k 0]: of
    ReLU or Leaky ReLU units (`alpha`), or of the loss `landscape` encloses
    (`smooth.ArcsineLandscape`: erf, normal_cdf).

    The box has radius `radius` around the refined centre; the proof fails (with its
    reason) when no critical point is within `max_move` of the stored point, when the
    Krawczyk test or the inertia cannot be decided on the box.
    """
    start = time.perf_counter()
    weights = np.asarray(weights, float)
    landscape = landscape or E.ReluLandscape(alpha)
    with precision(bits):
        try:
            centre = _refine(weights, k, landscape, steps=2)
        except np.linalg.LinAlgError:
            return Certificate.failed(
                "the Hessian is singular at the point: not isolated",
                radius,
                weights,
                time.perf_counter() - start,
            )
        flat = np.array([float(x) for row in centre for x in row])
        moved = float(np.max(np.abs(flat - weights.ravel())))

        def failed(reason):
            return Certificate.failed(reason, radius, flat.reshape(weights.shape),
                                      time.perf_counter() - start, moved < radius)  # fmt: skip

        if not moved <= max_move:
            return failed(
                f"not a critical point near the stored point (Newton moves it {moved:.2g})"
            )
        box = [[arb(x, radius) for x in row] for row in centre]
        hessian = landscape.hessian(box, k)
        gradient = arb_mat(hessian.nrows(), 1, landscape.gradient(centre, k))
        inside, worst = krawczyk(gradient, hessian, radius)
        if not inside:
            return failed(
                f"Krawczyk: K(X) reaches {worst:.3g} from the centre, beyond r = {radius:.3g}"
            )
        negative, min_eig_low, why = _inertia(hessian)
        if negative < 0:
            return failed(why)
        loss = _loss(centre, hessian, k, landscape, radius)
    return Certificate(
        proved=True,
        kind=PointKind.of_index(negative),
        reason="",
        radius=radius,
        centre=flat.reshape(weights.shape),
        loss_low=lower(loss),
        loss_high=upper(loss),
        min_eig_low=min_eig_low,
        negative=negative,
        contains_stored=moved < radius,
        seconds=time.perf_counter() - start,
    )
