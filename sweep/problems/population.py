"""The closed-form population loss (Safran & Shamir, ICML 2018): ReLU or Leaky ReLU
students of any width n in any dimension d against the orthonormal teacher V = [I_k 0].

Where did a run land? A run that stopped on its gradient (or loss) criterion is a
stationary point. It is a global minimum when it matches the teacher up to a permutation
of neurons (n = k) or when its loss is at most `global_loss_tol` (any width). Otherwise the
smallest eigenvalue of its float64 Hessian decides: below -eig_tol it is a saddle, else a
spurious local minimum (Safran & Shamir check the same sign). Where a neuron is zero the
Hessian does not exist, and the escape-neuron test (`diagnostics/escape.py`) decides instead.
"""

import numpy as np

from ..config import ClassifySettings
from ..diagnostics.escape import min_escape_slope
from ..diagnostics.spectrum import distinct_min_eigenvalues, min_eigenvalues
from ..objectives import PopulationLoss, gaussian
from ..objectives.data import Data
from ..outcomes import CONVERGED, Classified, DecidedBy, Finished, Status, StopReason
from ..proofs import Certificate, prove_point
from ..symmetry.canonical import canonical_form
from ..symmetry.structure import NONE, symmetry_type
from .base import Problem


class Population(Problem):
    kind = "gaussian_relu"
    catalogued = True

    @property
    def objective(self) -> PopulationLoss:
        return PopulationLoss(n=self.cell.n, d=self.cell.d, alpha=self.config.problem.alpha)

    def make_data(self) -> Data:
        teacher = gaussian.orthonormal_teacher(self.cell.k, self.cell.d)
        return Data(train=teacher, test=None, teacher=teacher)

    def basin_applies(self) -> bool:
        optimizer = self.config.optimizer
        return (
            bool(self.config.stop.basin_grad)
            and optimizer.schedule == "constant"
            and (optimizer.kind in ("gd", "flow"))
        )

    def classify(self, ends: Finished) -> Classified:
        """Statuses, smallest Hessian eigenvalues and symmetry types of finished runs.

        `test_loss` is the loss itself (it is the population loss).
        """
        teacher = np.asarray(self.data.teacher)
        tolerances = self.config.classify
        weights = np.asarray(ends.weights)
        converged = np.isin(ends.reason, CONVERGED)
        alive = np.all(np.linalg.norm(weights, axis=2) > tolerances.zero_tol, axis=1)
        batched = np.full(len(weights), np.nan)
        batched[converged & alive], _ = distinct_min_eigenvalues(
            weights[converged & alive], teacher, self.objective, canonical_form
        )
        dead = converged & ~alive
        batched[dead] = living_min_eigenvalues(
            weights[dead], teacher, self.objective, tolerances.zero_tol
        )
        m = len(weights)
        found = Classified(
            status=[], min_eig=np.full(m, np.nan), decided_by=[], symmetry=[],
            test_loss=list(ends.loss), linear_loss=[None] * m, kink_entered=[None] * m,
            essentially_linear=[None] * m, bias_movement=[None] * m,
        )  # fmt: skip
        for i, (w, why, value, eig) in enumerate(
            zip(weights, ends.reason, ends.loss, batched, strict=True)
        ):
            if why in CONVERGED:
                known = None if np.isnan(eig) else eig
                status, min_eig, decided_by = self.classify_point(w, value, known)
                symmetry = symmetry_type(w, tolerances.symmetry_tol, self.cell.k)
            else:
                status = Status.DIVERGED if why == StopReason.NONFINITE else Status.NOT_CONVERGED
                min_eig, decided_by, symmetry = np.nan, DecidedBy.NOTHING, NONE
            found.status.append(status)
            found.min_eig[i] = min_eig
            found.decided_by.append(decided_by)
            found.symmetry.append(symmetry)
        return found

    def certify(self, weights: np.ndarray, radius: float = 1e-9) -> Certificate:
        """A computer-assisted proof of what the critical point near `weights` (n, d) is:
        a strict minimum or a saddle with its index, on a box of `radius` around it where
        it is the only critical point, or a failure with its reason. A point with a
        symmetry group is proved in its fixed-point space (`proofs/symmetric.py`, a cost
        flat in k); the full-space proof (`proofs/certificate.py`) is the fallback for
        points without one, or where that proof fails (`proofs/pipeline.py`)."""
        weights = np.asarray(weights, float).reshape(self.cell.n, self.cell.d)
        return prove_point(weights, self.cell.k, radius=radius, alpha=self.objective.alpha)

    def classify_point(
        self, weights: np.ndarray, loss: float, min_eig: float | None = None
    ) -> tuple[Status, float, DecidedBy]:
        """(status, min_eig, decided_by) of one stationary point (n, d).

        `min_eig`, if given, is the smallest eigenvalue of the Hessian of its living
        neurons (`living_min_eigenvalues`).
        """
        return classify_point(weights, loss, self.data.teacher, self.config.classify,
                              self.objective, min_eig)  # fmt: skip


def living_min_eigenvalues(
    weights: np.ndarray, teacher: np.ndarray, objective: PopulationLoss, zero_tol: float
) -> np.ndarray:
    """Smallest eigenvalue of the Hessian of each point's living neurons (norm above
    zero_tol), (m, n, d) -> (m,); inf where none lives. The Hessian of the living neurons
    does not depend on the objective's n, so points with as many living neurons share
    batched calls: the same programs and padded batches as one point at a time, so the
    same values, bit for bit."""
    weights = np.asarray(weights)
    alive = np.linalg.norm(weights, axis=2) > zero_tol
    counts = alive.sum(axis=1)
    found = np.full(len(weights), np.inf)
    for count in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == count)
        living = np.stack([weights[i][alive[i]] for i in rows])
        found[rows] = min_eigenvalues(living, teacher, objective)
    return found


def teacher_distance(weights: np.ndarray, teacher: np.ndarray) -> float:
    """max_i |w_i - v_pi(i)| for the best permutation pi, or inf when n != k.

    Near a global minimum each student neuron is close to its own teacher neuron, so the
    nearest-neighbour assignment is the permutation; if it is not one, the point is far.
    """
    if weights.shape[0] != teacher.shape[0]:
        return np.inf
    distance = np.linalg.norm(weights[:, None, :] - teacher[None, :, :], axis=-1)
    nearest = distance.argmin(axis=1)
    if len(set(nearest.tolist())) != len(nearest):
        return np.inf
    return float(distance[np.arange(len(nearest)), nearest].max())


def classify_point(
    weights: np.ndarray,
    loss: float,
    teacher: np.ndarray,
    tolerances: ClassifySettings,
    objective: PopulationLoss,
    min_eig: float | None = None,
) -> tuple[Status, float, DecidedBy]:
    """(status, min_eig, decided_by) of one stationary point (n, d) of `objective`;
    `min_eig`, if given, is that of `living_min_eigenvalues`."""
    teacher = np.asarray(teacher)
    alive = np.linalg.norm(weights, axis=1) > tolerances.zero_tol
    if min_eig is None:
        min_eig = float(
            living_min_eigenvalues(weights[None], teacher, objective, tolerances.zero_tol)[0]
        )
    # Where a neuron is zero, the Hessian is that of the living neurons, and a zero neuron
    # must not be able to escape.
    decided_by = DecidedBy.HESSIAN if alive.all() else DecidedBy.ESCAPE_NEURON
    if loss <= tolerances.global_loss_tol or teacher_distance(weights, teacher) <= (
        tolerances.match_tol
    ):
        return Status.GLOBAL, min_eig, decided_by
    if decided_by == DecidedBy.ESCAPE_NEURON and min_escape_slope(
        weights[alive], teacher, objective.alpha
    ) < -(tolerances.eig_tol):
        return Status.SADDLE, min_eig, decided_by
    if min_eig < -tolerances.eig_tol:
        return Status.SADDLE, min_eig, decided_by
    return Status.SPURIOUS, min_eig, decided_by
