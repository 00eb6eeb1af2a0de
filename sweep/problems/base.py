"""The interface every problem kind implements, and what the layers above rely on.

A `Problem` is one cell (k, n, d) of a sweep of one kind. It owns:
  - its data (`data`: a teacher, or a data set) and its `objective`: initialization, loss,
    gradient, Hessian and the `watch` condition (a hashable object jitted code takes as a
    static argument, see `sweep/objectives/`);
  - `finish`: what a run gets at a checkpoint (by default the float64 Newton polish);
  - `classify`: where runs landed, always the same columns (`outcomes.Classified`);
  - `certify`: a proof of a classified point, where the kind offers one.
The engine, runner, results, report, replay and cluster code use only this interface.
"""

import abc
import functools
from collections.abc import Callable
from typing import ClassVar, NamedTuple, Protocol

import jax
import numpy as np
from jax.typing import DTypeLike

from .. import programs
from ..config import Cell, Config
from ..finishes import basin, polish
from ..finishes.krylov import DENSE_LIMIT
from ..objectives.data import Data, TrainData
from ..objectives.initializers import Normal
from ..outcomes import Classified, Finished, StopReason
from ..proofs.certificate import Certificate


class Objective(Protocol):
    """What training minimizes (hashable; see `sweep/objectives/__init__.py`)."""

    def param_shape(self) -> tuple[int, ...]: ...
    def init(
        self, key: jax.Array, scale: float, dtype: DTypeLike = ..., normal: Normal = ...
    ) -> jax.Array: ...
    def loss(self, params: jax.Array, data: TrainData) -> jax.Array: ...
    def loss_and_grad(self, params: jax.Array, data: TrainData) -> tuple[jax.Array, jax.Array]: ...
    def hessian(self, params: jax.Array, data: TrainData) -> jax.Array: ...
    def hessian_operator(
        self, params: jax.Array, data: TrainData
    ) -> Callable[[jax.Array], jax.Array]:
        """x -> H x at `params`, with what depends only on the point computed once."""
        ...

    def chunk_floats(self) -> int | None:
        """Floats per run that size a CPU training chunk (`programs.chunk_runs`); None
        trains each device's whole slice at once."""
        ...

    def watch(self, params: jax.Array, data: TrainData) -> jax.Array: ...


class Finish(NamedTuple):
    """The result of `Problem.finish` for one run."""

    weights: np.ndarray  # the finished point (the input point when not converged)
    loss: float
    grad_norm: float
    iterations: int
    converged: bool  # reached stop.grad_tol, or a stationary point on kinks
    reason: int = StopReason.NEWTON  # how it ended, if converged (NEWTON or KINK)


class Problem(abc.ABC):
    """One cell of a sweep of one problem kind."""

    kind: ClassVar[str]  # the config's problem.kind
    # Its points are catalogued up to permutations of neurons and coordinates, and its
    # catalogue proved point by point (`certify`); published tables (Safran & Shamir)
    # compare with its rates.
    catalogued: ClassVar[bool] = False

    @classmethod
    def catalogues(cls, config: Config) -> bool:
        """Whether a sweep of this config gets a catalogue of its points (`catalogued`,
        where the config keeps the loss's permutation symmetries)."""
        return cls.catalogued

    @classmethod
    def has_spectra(cls, config: Config) -> bool:
        """Whether the catalogue gets each point's symmetry-adapted spectrum
        (`symmetry/isotypic.py`, written for the ReLU loss)."""
        return False

    @classmethod
    def proves(cls, config: Config) -> bool:
        """Whether `certify` proves points of a sweep of this config."""
        return cls.catalogues(config)

    # Also try `finish` on a run that reached stop.max_steps without stop.polish_after.
    finishes_at_max_steps: ClassVar[bool] = False

    def __init__(self, config: Config, cell: Cell):
        self.config = config
        self.cell = cell

    @property
    @abc.abstractmethod
    def objective(self) -> Objective:
        """The loss training minimizes, for this cell's shapes."""

    @abc.abstractmethod
    def make_data(self) -> Data:
        """The cell's data, drawn from the sweep seed (see `data`)."""

    @functools.cached_property
    def data(self) -> Data:
        """The cell's data, made once."""
        return self.make_data()

    @abc.abstractmethod
    def classify(self, ends: Finished) -> Classified:
        """Statuses and diagnostics of finished runs of this cell."""

    def first_checkpoint(self) -> int:
        """The step of a run's first pause for `finish` (then doubling; 0: never)."""
        return self.config.stop.polish_after

    def finish(self, weights: np.ndarray, step_size: float = 0.0, final: bool = False) -> Finish:
        """Try to finish a run at a checkpoint: the float64 Newton polish (`polish.py`).
        `step_size` is the run's own (for finishes that take gradient steps first); `final`
        says the run stops here whatever the finish does. Above `krylov.DENSE_LIMIT`
        parameters the polish is matrix-free."""
        data, tol = self.data.train, self.config.stop.grad_tol
        if np.size(weights) > DENSE_LIMIT:
            batch = polish.damped_newton_cg(np.asarray(weights)[None], data, tol, self.objective)
            found = polish.Polished(*(np.asarray(field)[0] for field in batch))
        else:
            found = polish.newton_polish(weights, data, tol, self.objective)
        return Finish(np.asarray(found.weights), float(found.loss), float(found.grad_norm),
                      int(found.iterations), bool(found.converged))  # fmt: skip

    def basin_applies(self) -> bool:
        """Whether runs of this cell get the basin finish (`finishes/basin.py`): plain gradient
        descent with a constant step on a smooth loss, where GD's limit is Newton's."""
        return False

    def basin_finish(self, weights: np.ndarray, step_size: np.ndarray) -> basin.BasinFinish:
        """The basin finish of runs (m, *param_shape) with their step sizes (m,). Gradient
        flow has no step: it converges to x* on any ball where the Hessian is positive
        definite, which the test checks with step 0."""
        if self.config.optimizer.flow:
            step_size = np.zeros_like(step_size)
        return basin.finish_runs(weights, self.data.train, step_size,
                                 self.config.stop.grad_tol, self.objective)  # fmt: skip

    def compile_finishes_ahead(self) -> None:
        """Start compiling this cell's basin finish and matrix-free polish in the
        background (`programs.quick_to_compile`), so that it overlaps the training."""
        weights = jax.ShapeDtypeStruct(
            (programs.finish_batch(), *self.objective.param_shape()), np.float64
        )
        data, tol = self.data.train, self.config.stop.grad_tol
        basin.compile_ahead(weights, data, tol, self.objective)
        if self.config.stop.polish_after:  # else no polish (`pauses.finish_in_basin`)
            polish.damped_newton_cg.ahead(weights, data, tol, self.objective)

    def polish_runs(self, weights: np.ndarray) -> polish.Polished:
        """The matrix-free Newton polish (`polish.damped_newton_cg`) of runs
        (m, *param_shape), as host arrays."""
        data, tol, objective = self.data.train, self.config.stop.grad_tol, self.objective
        return polish.Polished(
            *programs.in_calls(lambda w: polish.damped_newton_cg(w, data, tol, objective), weights)
        )

    def certify(self, weights: np.ndarray, radius: float = 1e-9) -> Certificate | None:
        """A rigorous proof of what the critical point near `weights` is, on a box of
        `radius` around it (`proofs/certificate.py`); None where the kind has none."""
        return None
