"""The closed-form population loss, x ~ N(0, I_d): students of any width n in any
dimension d, of any activation (`objectives/kernels.py`), against the orthonormal teacher
V = [I_k 0] (Safran & Shamir, ICML 2018), a random one or one read from a file, with
output weights fixed to ones or trained.

Where did a run land? A run that stopped on its gradient (or loss) criterion is a
stationary point. It is a global minimum when it matches the teacher up to a permutation
of neurons (n = k, fixed output weights) or when its loss is at most `global_loss_tol`
(any width). Otherwise the smallest eigenvalue of its float64 Hessian decides: below
-eig_tol it is a saddle, else a spurious local minimum (Safran & Shamir check the same
sign). For ReLU and Leaky ReLU the Hessian does not exist where a neuron is zero, and the
escape-neuron test (`diagnostics/escape.py`) decides instead (fixed output weights; with
trained ones such a point is `undecided`). Smooth activations have a Hessian everywhere.
"""

import functools

import numpy as np

from ..config import ClassifySettings, ConfigError
from ..config.grid import axis_combinations, with_axes
from ..diagnostics.escape import min_escape_slope
from ..diagnostics.spectrum import distinct_min_eigenvalues, min_eigenvalues
from ..objectives import KernelLoss, PopulationLoss, kernels
from ..objectives.data import Data
from ..outcomes import CONVERGED, Classified, DecidedBy, Finished, Status, StopReason
from ..proofs import Certificate, prove_point
from ..proofs.pipeline import ARCSINE
from ..symmetry.canonical import canonical_form
from ..symmetry.structure import NONE, symmetry_type
from .base import Problem
from .teachers import teacher_neurons

RELU_FAMILY = ("relu", "leaky_relu")
PROVABLE = (*RELU_FAMILY, *ARCSINE)


def _as_is(weights: np.ndarray) -> np.ndarray:
    return weights


def _symmetric(problem) -> bool:
    return problem.teacher == "orthonormal" and problem.output == "fixed"


def _problem_variants(config):
    """The [problem] settings of every combination of the sweep's `[grid]` axes."""
    return [with_axes(config, axes).problem for axes in axis_combinations(config)]


class Population(Problem):
    kind = "gaussian_relu"
    catalogued = True

    @classmethod
    def catalogues(cls, config) -> bool:
        """The orthonormal teacher and fixed output weights, in every cell (`symmetric`)."""
        return all(_symmetric(problem) for problem in _problem_variants(config))

    @classmethod
    def proves(cls, config) -> bool:
        """Proofs exist for ReLU, Leaky ReLU, erf and normal_cdf (`proofs/`)."""
        return cls.catalogues(config) and all(
            problem.activation in PROVABLE for problem in _problem_variants(config)
        )

    @classmethod
    def has_spectra(cls, config) -> bool:
        """The blocks are those of the ReLU loss: not for Leaky ReLU or any other
        activation (in any cell)."""
        return all(problem.activation == "relu" and not problem.alpha
                   for problem in _problem_variants(config))  # fmt: skip

    @property
    def analytic(self) -> bool:
        """ReLU or Leaky ReLU with fixed output weights: the hand-written formulas
        (`objectives/population.py`), with the kinks' escape test and the proofs."""
        problem = self.config.problem
        return problem.activation in RELU_FAMILY and problem.output == "fixed"

    @property
    def symmetric(self) -> bool:
        """The loss is invariant under permutations of neurons and of coordinates (with
        the teacher's neurons): the orthonormal teacher and fixed output weights. Its
        points get symmetry types and are catalogued up to these permutations."""
        return _symmetric(self.config.problem)

    @property
    def objective(self) -> PopulationLoss | KernelLoss:
        problem, n, d = self.config.problem, self.cell.n, self.cell.d
        if self.analytic:
            return PopulationLoss(n=n, d=d, alpha=problem.alpha,
                                  orthonormal=problem.teacher == "orthonormal")  # fmt: skip
        return KernelLoss(n=n, d=d, kernel=self.kernel, trained_output=problem.output == "trained")

    @functools.cached_property
    def kernel(self):
        """E[s(a.x) s(b.x)] of this problem's activation (`objectives/kernels.py`); a
        function given in place of a name (`sweep.run(activation=...)`) is kept in
        `activation_function`."""
        problem = self.config.problem
        activation = getattr(self, "activation_function", None) or problem.activation
        try:
            found = kernels.kernel(activation, problem.quadrature_nodes, problem.alpha)
        except (ImportError, ValueError) as error:
            raise ConfigError("problem.activation", "a JAX function as module.function",
                              problem.activation, detail=f"problem.activation: "
                              f"{problem.activation!r}: {error}") from None  # fmt: skip
        if self.cell.n > self.cell.k and problem.output == "fixed" and not found.zero_at_zero:
            raise ConfigError("sweep.n", None, None, detail=f"sweep.n: expected n = k for "
                              f"an activation with s(0) != 0 ({problem.activation}) and fixed "
                              f"output weights, got n = {self.cell.n}; set problem.output = "
                              '"trained"')  # fmt: skip
        return found

    def make_data(self) -> Data:
        teacher = teacher_neurons(self.config.problem, self.cell.k, self.cell.d, self.config.seed)
        return Data(train=teacher, test=None, teacher=teacher)

    def neurons(self, params: np.ndarray) -> np.ndarray:
        """The hidden neurons' weights (..., n, d) of runs' parameters (without trained
        output weights)."""
        return np.asarray(params)[..., : self.cell.d]

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
        norms = np.linalg.norm(self.neurons(weights), axis=2)
        alive = np.all(norms > tolerances.zero_tol, axis=1)
        canonical = canonical_form if self.symmetric else _as_is
        kinked = self.config.problem.activation in RELU_FAMILY
        smooth = converged if not kinked else converged & alive
        batched = np.full(len(weights), np.nan)
        batched[smooth], _ = distinct_min_eigenvalues(
            weights[smooth], teacher, self.objective, canonical
        )
        dead = converged & ~alive
        if kinked and self.analytic:
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
                symmetry = (symmetry_type(w, tolerances.symmetry_tol, self.cell.k)
                            if self.symmetric else NONE)  # fmt: skip
            else:
                status = Status.DIVERGED if why == StopReason.NONFINITE else Status.NOT_CONVERGED
                min_eig, decided_by, symmetry = np.nan, DecidedBy.NOTHING, NONE
            found.status.append(status)
            found.min_eig[i] = min_eig
            found.decided_by.append(decided_by)
            found.symmetry.append(symmetry)
        return found

    def certify(self, weights: np.ndarray, radius: float = 1e-9) -> Certificate | None:
        """A computer-assisted proof of what the critical point near `weights` (n, d) is:
        a strict minimum or a saddle with its index, on a box of `radius` around it where
        it is the only critical point, or a failure with its reason. A point with a
        symmetry group is proved in its fixed-point space (`proofs/symmetric.py`, a cost
        flat in k); the full-space proof (`proofs/certificate.py`) is the fallback for
        points without one, or where that proof fails (`proofs/pipeline.py`). ReLU,
        Leaky ReLU, erf and normal_cdf (full space only) against the orthonormal teacher
        with fixed output weights: None otherwise."""
        problem = self.config.problem
        if not (self.symmetric and problem.activation in PROVABLE):
            return None
        weights = np.asarray(weights, float).reshape(self.cell.n, self.cell.d)
        return prove_point(weights, self.cell.k, radius=radius, alpha=problem.alpha,
                           activation=problem.activation)  # fmt: skip

    def classify_point(
        self, weights: np.ndarray, loss: float, min_eig: float | None = None
    ) -> tuple[Status, float, DecidedBy]:
        """(status, min_eig, decided_by) of one stationary point (its parameters).

        `min_eig`, if given, is the smallest eigenvalue of the Hessian (of its living
        neurons, for ReLU and Leaky ReLU).
        """
        if self.analytic:
            return classify_point(weights, loss, self.data.teacher, self.config.classify,
                                  self.objective, min_eig)  # fmt: skip
        return self._classify_smooth(weights, loss, min_eig)

    def _classify_smooth(self, params, loss, min_eig):
        """`classify_point` where the objective is a `KernelLoss`."""
        tolerances, teacher = self.config.classify, np.asarray(self.data.teacher)
        neurons = self.neurons(params)
        alive = np.linalg.norm(neurons, axis=1) > tolerances.zero_tol
        if min_eig is None and (alive.all() or self.config.problem.activation not in RELU_FAMILY):
            min_eig = float(min_eigenvalues(np.asarray(params)[None], teacher, self.objective)[0])
        matched = self.config.problem.output == "fixed" and (
            teacher_distance(neurons, teacher) <= tolerances.match_tol
        )
        decided_by = DecidedBy.HESSIAN if min_eig is not None else DecidedBy.NOTHING
        if loss <= tolerances.global_loss_tol or matched:
            return Status.GLOBAL, np.nan if min_eig is None else min_eig, decided_by
        if min_eig is None:  # ReLU, a zero neuron, trained output weights: no test applies
            return Status.UNDECIDED, np.nan, decided_by
        status = Status.SADDLE if min_eig < -tolerances.eig_tol else Status.SPURIOUS
        return status, min_eig, decided_by


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
