"""Networks on a finite data set: the empirical squared loss of a fully connected student
(`objectives/network.py`) on sampled or given points (`sampling.py`).

Where a run landed, and what it learned. "global" means the smallest empirical loss the
architecture allows, taken to be zero: a realizable teacher, or a student wide enough to
interpolate the points. The minima of an empirical ReLU loss often sit on kinks, where a
data point switches a neuron and no point has a small gradient: a run that reaches a
checkpoint (or max_steps) is finished onto the exact stationary point of its piece, its
kink pairs held on their kinks, and classified by the piecewise conditions (`kinks/`):
Wu, Simsek & Ged's directional stationarity and escape neurons for one hidden layer, the
pieces around the point for deeper nets (decided_by "kink" or "escape_neuron"). Smooth
points of deeper nets keep the Hessian test. A run stopped on a loss plateau where a
direction still lowers the loss at first order is not converged; one no check settles is
"undecided" (decided_by "plateau", with `fallback_reason`).

For 1-D students with biases (Holzmüller & Steinwart, JMLR 2022) a run is "essentially
linear" when no kink -b_i/w_i of a neuron that matters lay inside the range of the data
on the positive or on the negative half-line at any point training evaluated (every step
of GD, every epoch of SGD; `Network.watch`) nor at its end, and its loss equals the error
of the best affine fit on each half-line (the piecewise linear regression error): the net
is then just linear regression on each side of 0, however wide it is.
"""

import functools

import jax
import numpy as np

from .. import runtime
from ..diagnostics.spectrum import min_eigenvalues
from ..kinks import deep, finish_deep, finish_shallow, shallow
from ..kinks.perturb import losses
from ..kinks.verdict import MINIMUM, NOT_STATIONARY, SADDLE, Verdict
from ..objectives import Network, leaky
from ..objectives.data import Data
from ..objectives.initializers import run_key
from ..outcomes import CONVERGED, Classified, DecidedBy, Finished, Status, StopReason
from ..symmetry.structure import NONE
from . import sampling
from .base import Finish, Problem


@functools.partial(jax.jit, static_argnames=("net",))
def _kinks_inside(thetas, data, net):
    return jax.vmap(net.watch, (0, None))(thetas, data)


@functools.partial(jax.jit, static_argnames=("alpha",))
def _population_losses(weights, teacher, alpha):
    return jax.vmap(leaky.loss, (0, None, None))(weights, teacher, alpha)  # alpha 0: ReLU


@functools.partial(jax.jit, static_argnames=("net", "steps"))
def _descend(theta, data, net, step_size, steps):
    """Full-batch gradient descent from theta: where an SGD run's finish starts."""
    return jax.lax.fori_loop(
        0, steps, lambda _, t: t - step_size * jax.grad(net.loss)(t, data), theta
    )


# Full-batch steps before the finish of an SGD run whose own end point it cannot finish.
SGD_DESCENT = 2000
# Deeper nets with a loss below this also try Gauss-Newton towards a zero-loss point.
INTERPOLATE_FROM = 1e-4
# One hidden layer, full batch: the first finish comes at most this many steps in.
EARLY_FINISH = 2000
# One hidden layer: min_eig only up to this many parameters (a dense eigendecomposition
# of a larger Hessian costs more than training the run).
SPECTRUM_MAX_PARAMS = 1024


class DataSet(Problem):
    kind = "empirical"
    finishes_at_max_steps = True

    def __init__(self, config, cell):
        super().__init__(config, cell)
        self._verdicts = {}  # theta bytes -> verdict: the finish's, reused by classify
        self._last_finish = (None, None)  # (point and step, its Finish) of gradient descent

    @property
    def objective(self) -> Network:
        problem, init = self.config.problem, self.config.init
        return Network(
            n=self.cell.n,
            d=self.cell.d,
            depth=problem.depth,
            biases=problem.biases,
            train_output=problem.output == "trained",
            alpha=problem.alpha,
            ntk=init.parameterization == "ntk",
            bias_scale=float(init.bias_scale),
        )

    def make_data(self) -> Data:
        return sampling.make(self.config.problem, self.cell, self.config.seed)

    def finish(self, weights: np.ndarray, step_size: float = 0.0, final: bool = False) -> Finish:
        """`_finish_run`, once per point for gradient descent: its finish does not depend
        on `final`, and a run that stops on a plateau right after its checkpoint's finish
        failed (`pauses.settle`) would repeat that finish exactly."""
        if self._stochastic:
            with runtime.one_blas_thread():
                return self._finish_run(weights, step_size, final)
        key = (np.asarray(weights, float).tobytes(), float(step_size))
        if self._last_finish[0] != key:
            with runtime.one_blas_thread():
                self._last_finish = (key, self._finish_run(weights, step_size, final))
        return self._last_finish[1]

    def _finish_run(self, weights: np.ndarray, step_size: float, final: bool) -> Finish:
        """The exact finish onto the stationary point of the run's piece, its kink pairs
        held on their kinks (`kinks/`), accepted unless the piecewise conditions call the
        point not stationary. Deeper nets try the Newton polish first. SGD is finished
        only where it stops (`final`: its noise may still carry it out of a basin it
        sits in at a checkpoint), and if it cannot be finished there it first descends
        on the full batch."""
        net, data = self.objective, self.data.train
        start = np.array(weights, float)  # a copy: a Finish may be returned again
        if self._stochastic and not final:
            return Finish(start, float("nan"), float("nan"), 0, False)
        if net.depth != 2:
            polished = super().finish(weights, step_size)
            if polished.converged:
                return polished
            if polished.loss <= INTERPOLATE_FROM:
                stop = self.config.stop
                found = finish_deep.interpolate(net, start, data, stop.loss_tol)
                if found is not None:
                    point, steps = found
                    size = float(np.linalg.norm(net.loss_and_grad(point, data)[1]))
                    return Finish(point, float(net.loss(point, data)), size, steps, True)
        found = self._finish_exact(start, step_size)
        if found is None and self._stochastic and step_size > 0:  # final here
            moved = np.asarray(_descend(start, data, net, step_size, SGD_DESCENT))
            if np.all(np.isfinite(moved)):
                found = self._finish_exact(moved, step_size)
        if found is None:
            return Finish(start, float(net.loss(start, data)), float("nan"), 0, False)
        point, solves, verdict = found
        if verdict is None:  # smooth there (deeper nets)
            size = float(np.linalg.norm(net.loss_and_grad(point, data)[1]))
            return Finish(point, float(net.loss(point, data)), size, solves, True)
        reason = StopReason.KINK if verdict.kinks else StopReason.NEWTON
        return Finish(point, float(net.loss(point, data)), verdict.gradient, solves, True,
                      reason)  # fmt: skip

    def first_checkpoint(self) -> int:
        """One hidden layer, full batch: at most EARLY_FINISH. Its finish is one least-
        squares solve, so a run stalled on a kink need not idle to stop.polish_after
        (set for SGD, whose noise needs it, or for the costlier finish of deeper nets)."""
        after = self.config.stop.polish_after
        if after and self.objective.depth == 2 and not self._stochastic:
            return min(after, EARLY_FINISH)
        return after

    @property
    def _stochastic(self) -> bool:
        """Minibatches smaller than the data (a batch of all points is gradient descent)."""
        batch = self.config.optimizer.batch_size
        return 0 < batch < len(self.data.train[0])

    def _finish_exact(self, start, step_size):
        net, data = self.objective, self.data.train
        if net.depth == 2:
            solved = finish_shallow.finish(net, start, data, step_size)
        else:
            solved = finish_deep.finish(net, start, data, step_size)
        if solved is None:
            return None
        verdict = self._verdict(solved[0])
        if verdict is not None and verdict.kind == NOT_STATIONARY:
            return None
        return (*solved, verdict)

    def _verdict(self, theta) -> Verdict | None:
        """The piecewise conditions at theta (None: a deeper net without kinks there)."""
        key = np.asarray(theta, float).tobytes()
        if key not in self._verdicts:
            net, data, stop = self.objective, self.data.train, self.config.stop
            if net.depth == 2:
                found = shallow.verdict(net, theta, data, grad_tol=stop.grad_tol,
                                        zero_tol=self.config.classify.zero_tol)  # fmt: skip
            else:
                found = deep.verdict(net, theta, data, grad_tol=stop.grad_tol,
                                     eig_tol=self.config.classify.eig_tol)  # fmt: skip
            self._verdicts[key] = found
        return self._verdicts[key]

    def classify(self, ends: Finished) -> Classified:
        """Statuses and diagnostics of finished runs; for 1-D students with biases also
        linear_loss, kink_entered (from `ends.watched` and the end point),
        essentially_linear, and for students with biases bias_movement."""
        tolerances = self.config.classify
        net, data = self.objective, self.data
        weights, loss, reason = np.asarray(ends.weights), np.asarray(ends.loss), ends.reason
        m = len(weights)
        converged = np.isin(reason, CONVERGED)
        min_eig = np.full(m, np.nan)
        needs_hessian = converged & (loss > tolerances.global_loss_tol)
        # One hidden layer: the piecewise conditions decide and the smallest eigenvalue is
        # a diagnostic, computed only where a dense eigendecomposition is cheap.
        spectrum = net.depth != 2 or net.size <= SPECTRUM_MAX_PARAMS
        if needs_hessian.any() and spectrum:
            min_eig[needs_hessian] = min_eigenvalues(weights[needs_hessian], data.train, net)
        status = np.where(reason == StopReason.NONFINITE, Status.DIVERGED, Status.NOT_CONVERGED)
        status = status.astype(object)
        status[converged] = Status.SPURIOUS
        status[needs_hessian & (min_eig < -tolerances.eig_tol)] = Status.SADDLE
        status[converged & ~needs_hessian] = Status.GLOBAL
        found = Classified(
            status=list(status),
            min_eig=min_eig,
            decided_by=[_decided_by(why, c) for why, c in zip(reason, converged, strict=True)],
            symmetry=[NONE] * m,
            test_loss=list(self.test_losses(weights)),
            linear_loss=[None] * m,
            kink_entered=[None] * m,
            essentially_linear=[None] * m,
            bias_movement=[None] * m,
        )
        self._classify_exact(ends, converged, found)
        if self._stochastic:
            found.sgd_loss = [
                float(before) if np.isfinite(before) else float(after)
                for before, after in zip(ends.trained_loss, loss, strict=True)
            ]
        if net.d == 1 and net.depth == 2 and net.biases:
            linear = linear_regression_error(*data.train)
            # The end point too: the Newton polish may have moved it after training's last look.
            entered = np.asarray(_kinks_inside(weights, data.train, net)) | np.asarray(
                ends.watched, bool
            )
            fits = loss <= linear * (1 + tolerances.linear_tol) + tolerances.global_loss_tol
            found.linear_loss = [linear] * m
            found.kink_entered = list(entered)
            found.essentially_linear = list(~entered & fits)
        if net.biases:
            found.bias_movement = list(self.bias_movement(ends.runs, weights))
        return found

    def _classify_exact(self, ends: Finished, converged: np.ndarray, found: Classified):
        """Statuses from the piecewise conditions (Wu, Simsek & Ged for one hidden layer,
        pieces for deeper nets); the Hessian test of `classify` decides smooth points of
        deeper nets and stays as the counted fallback for what the conditions cannot
        settle."""
        m = len(ends.runs)
        found.kinks, found.stationarity_margin = [None] * m, [None] * m
        found.fallback_reason = [None] * m
        global_tol = self.config.classify.global_loss_tol
        grad_tol = self.config.stop.grad_tol
        for i in np.flatnonzero(converged):
            verdict = self._verdict(ends.weights[i])
            if verdict is None:  # a deeper net, smooth there: the Hessian test decides
                found.kinks[i] = 0
                if ends.reason[i] == StopReason.PLATEAU and ends.grad_norm[i] > grad_tol:
                    found.status[i], found.decided_by[i] = Status.NOT_CONVERGED, DecidedBy.KINK
                    found.min_eig[i] = np.nan
                continue
            found.kinks[i], found.stationarity_margin[i] = verdict.kinks, verdict.margin
            if verdict.kinks:  # the Hessian there is one side's: no eigenvalue to report
                found.min_eig[i] = np.nan
            if ends.loss[i] <= global_tol:
                found.decided_by[i] = DecidedBy.KINK if verdict.kinks else DecidedBy.HESSIAN
                continue
            if verdict.kind in (MINIMUM, SADDLE, NOT_STATIONARY):
                # A run that stopped (on a plateau) where a direction still lowers the
                # loss at first order has not converged: gradient descent oscillates
                # there, or creeps along a kink too slowly for the finish to settle.
                found.status[i] = {MINIMUM: Status.SPURIOUS, SADDLE: Status.SADDLE,
                                   NOT_STATIONARY: Status.NOT_CONVERGED}[verdict.kind]  # fmt: skip
                found.decided_by[i] = DecidedBy(verdict.decided_by)
                continue
            # The counted fallback: no check settled it.
            found.status[i] = Status.UNDECIDED
            found.decided_by[i] = DecidedBy.PLATEAU
            found.fallback_reason[i] = verdict.reason

    def test_losses(self, weights: np.ndarray) -> np.ndarray:
        """Loss of each point on fresh data: the closed-form population loss where it exists
        (Gaussian inputs, a teacher, depth 2, no biases, unit output weights), else the
        mean loss on the test set."""
        net, data = self.objective, self.data
        closed_form = (
            self.config.problem.data == "gaussian"
            and data.teacher is not None
            and net.depth == 2
            and not net.biases
            and not net.train_output
        )
        if closed_form:
            scale = 1 / np.sqrt(net.d) if net.ntk else 1.0
            points = scale * np.asarray(weights).reshape(-1, net.n, net.d)
            return np.asarray(_population_losses(points, data.teacher, net.alpha))
        return np.asarray(losses(np.asarray(weights), data.test, net))

    def bias_movement(self, runs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """max_i |b_i(end) - b_i(start)| over the first layer's biases of each run."""
        net, cell, seed = self.objective, self.cell, self.config.seed

        def initial(run):
            return net.init(run_key(seed, cell.k, cell.n, cell.d, run), cell.init_scale)

        start = np.asarray(jax.vmap(initial)(np.asarray(runs)))
        moved = [
            np.max(np.abs(net.unflatten(end)["b1"] - net.unflatten(begin)["b1"]))
            for end, begin in zip(np.asarray(weights), start, strict=True)
        ]
        return np.asarray(moved, float)


def _decided_by(reason: int, converged: bool) -> DecidedBy:
    if reason == StopReason.PLATEAU:
        return DecidedBy.PLATEAU
    return DecidedBy.HESSIAN if converged else DecidedBy.NOTHING


def linear_regression_error(inputs: np.ndarray, targets: np.ndarray) -> float:
    """1/(2N) times the squared error of the best affine fit on x < 0 and on x > 0 (and the
    best constant at x = 0), each side fitted on its own."""
    x, y = np.asarray(inputs, float).ravel(), np.asarray(targets, float)
    error = 0.0
    for side in (x < 0, x > 0, x == 0):
        if side.sum() < 2:
            continue
        design = np.stack([x[side], np.ones(side.sum())], axis=1)
        fit, *_ = np.linalg.lstsq(design, y[side], rcond=None)
        error += float(np.sum((design @ fit - y[side]) ** 2))
    return 0.5 * error / len(x)
