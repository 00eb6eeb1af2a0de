"""Networks on a finite data set: the empirical squared loss of a fully connected student
(`landscape/network.py`) on sampled or given points (`datasets.py`).

Where a run landed, and what it learned. "global" means the smallest empirical loss the
architecture allows, taken to be zero: a realizable teacher, or a student wide enough to
interpolate the points. A converged run above `global_loss_tol` is a saddle if its
Hessian has an eigenvalue below -eig_tol, else a spurious local minimum (dead neurons give
zero eigenvalues: such minima are not strict). A run that stopped on a loss plateau
(`StopReason.PLATEAU`, decided_by "plateau") sits where the loss stopped falling,
typically on a kink where a data point switches a neuron: the Hessian there is that of
one side, so its sign is evidence, not proof.

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

from .. import datasets
from ..analysis.spectrum import min_eigenvalues
from ..analysis.symmetry import NONE
from ..datasets import Data
from ..init import run_key
from ..landscape import Network, leaky
from ..outcomes import CONVERGED, Classified, DecidedBy, Finished, Status, StopReason
from .base import Problem


@functools.partial(jax.jit, static_argnames=("net",))
def _losses(thetas, data, net):
    return jax.vmap(net.loss, (0, None))(thetas, data)


@functools.partial(jax.jit, static_argnames=("net",))
def _kinks_inside(thetas, data, net):
    return jax.vmap(net.watch, (0, None))(thetas, data)


@functools.partial(jax.jit, static_argnames=("alpha",))
def _population_losses(weights, teacher, alpha):
    return jax.vmap(leaky.loss, (0, None, None))(weights, teacher, alpha)  # alpha 0: ReLU


class DataSet(Problem):
    kind = "empirical"

    @property
    def objective(self) -> Network:
        problem, init = self.config.problem, self.config.init
        return Network(
            n=self.cell.n,
            d=self.cell.d,
            depth=problem.depth,
            biases=problem.biases,
            train_output=problem.output == "trained",
            alpha=problem.alpha if problem.activation == "leaky_relu" else 0.0,
            ntk=init.parameterization == "ntk",
            bias_scale=float(init.bias_scale),
        )

    def make_data(self) -> Data:
        return datasets.make(self.config.problem, self.cell, self.config.seed)

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
        if needs_hessian.any():
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
        return np.asarray(_losses(np.asarray(weights), data.test, net))

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
