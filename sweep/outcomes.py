"""How runs end: stop reasons and statuses with their meaning, and the records that carry
them from the engine to classification and to the results table.

Stop reasons are small integers on the device (a per-run `int8` in the training state)
and their names in the results; statuses are strings in the results. Each member carries
its meaning, as optimistix's `RESULTS` does.
"""

import enum
from dataclasses import dataclass, fields

import numpy as np


def _with_meaning(cls, value, meaning: str):
    """An enum member `value` that also carries its `meaning` (a `__new__` for enums)."""
    member = cls._member_type_.__new__(cls, value)
    member._value_ = value
    member.meaning = meaning
    return member


class StopReason(enum.IntEnum):
    """Why a run stopped (or that it has not), stored per run as an int8."""

    __new__ = _with_meaning

    RUNNING = 0, "still training"
    GRAD = 1, "the gradient norm reached stop.grad_tol"
    LOSS = 2, "the loss reached stop.loss_tol (a global minimum)"
    MAX_STEPS = 3, "stop.max_steps steps without meeting a stopping rule"
    NONFINITE = 4, "the loss or the gradient became inf or NaN"
    EMPTY = 5, "a slot of the batch that holds no run"
    NEWTON = 6, "the Newton polish reached stop.grad_tol from a checkpoint"
    # Held at exactly its checkpoint step so that the polish starts from the same point
    # whatever the batch or segment length; a run that is not finished there resumes.
    PAUSED = 7, "held at a polish checkpoint for the host to decide"
    PLATEAU = 8, "the loss fell by at most stop.plateau_tol between two checkpoints"
    KINK = 9, "finished onto the exact stationary point of its piece (data on kinks)"
    BASIN = (
        10,
        "in the basin of a strict minimum: Newton finished at GD's own limit (finishes/basin.py)",
    )

    @property
    def label(self) -> str:
        """The name stored in the results' stop_reason column."""
        return _LABELS[self]


_LABELS = {
    StopReason.RUNNING: "running",
    StopReason.GRAD: "grad_tol",
    StopReason.LOSS: "loss_tol",
    StopReason.MAX_STEPS: "max_steps",
    StopReason.NONFINITE: "nonfinite",
    StopReason.EMPTY: "empty",
    StopReason.NEWTON: "newton",
    StopReason.PAUSED: "paused",
    StopReason.PLATEAU: "plateau",
    StopReason.KINK: "kink",
    StopReason.BASIN: "basin",
}

# Stop reasons at a point classification treats as stationary.
CONVERGED = (
    StopReason.GRAD, StopReason.LOSS, StopReason.NEWTON, StopReason.PLATEAU, StopReason.KINK,
    StopReason.BASIN,
)  # fmt: skip


class _Described(enum.StrEnum):
    """A string enumeration whose members carry their meaning."""

    __new__ = _with_meaning


class Status(_Described):
    """Where a run landed (the results' status column)."""

    GLOBAL = "global", "a global minimum: the teacher up to symmetry, or the least loss"
    SPURIOUS = "spurious", "a local minimum above the global one"
    SADDLE = "saddle", "a stationary point with a descent direction"
    NOT_CONVERGED = "not_converged", "no stationary point: max_steps, or first-order descent left"
    UNDECIDED = "undecided", "a stationary point on kinks that no check could settle"
    DIVERGED = "diverged", "the loss became inf or NaN"


class DecidedBy(_Described):
    """What decided a converged run's status (the results' decided_by column)."""

    NOTHING = "", "not converged: no test was run"
    HESSIAN = "hessian", "the sign of the smallest Hessian eigenvalue"
    ESCAPE_NEURON = "escape_neuron", "a zero neuron's one-sided slope (Wu, Simsek & Ged)"
    KINK = "kink", "the piecewise conditions on data: stationarity on kinks, escape, pieces"
    PLATEAU = "plateau", "fallback: a one-sided Hessian where no exact check applied"


STATUSES = tuple(status.value for status in Status)


class PointKind(_Described):
    """What a critical point is, as a proof or a spectrum says (critical tables' kind)."""

    MINIMUM = "minimum", "a strict local minimum: every Hessian eigenvalue positive"
    SADDLE = "saddle", "a critical point with at least one negative Hessian eigenvalue"
    DEGENERATE = (
        "degenerate",
        ("no negative Hessian eigenvalue but some zero ones: second order does not decide"),
    )

    @staticmethod
    def of_index(index: int, nullity: int = 0) -> "PointKind":
        """The kind of a critical point with `index` negative and `nullity` zero
        eigenvalues."""
        if index:
            return PointKind.SADDLE
        return PointKind.DEGENERATE if nullity else PointKind.MINIMUM


class Verdict(_Described):
    """The outcome of proving one point (the certified column)."""

    PROVED = "proved", "every claim about the point holds on a box, in ball arithmetic"
    FAILED = "failed", "the proof could not decide a claim, or found it false (see reason)"
    SKIPPED = "skipped", "no proof was attempted (see reason)"


@dataclass
class Finished:
    """Runs that stopped, as host arrays with leading axis m."""

    runs: np.ndarray  # (m,) run indices within the cell
    weights: np.ndarray  # (m, *param_shape) final points
    steps: np.ndarray  # (m,) updates applied
    newton_steps: np.ndarray  # (m,) Newton polish iterations (0: not polished)
    step_size: np.ndarray  # (m,) each run's step size
    loss: np.ndarray  # (m,) loss at the final point
    grad_norm: np.ndarray  # (m,) gradient norm there
    reason: np.ndarray  # (m,) StopReason values
    watched: np.ndarray  # (m,) the objective's `watch` held at some point of the run
    # (m,) the loss where training left the run, before a finish moved it (NaN: none)
    trained_loss: np.ndarray
    # (m,) gradient steps plain GD takes to stop.grad_tol: `steps` for a run that got
    # there, plus the linear rate's prediction for one finished in the basin; -1: unknown
    predicted_steps: np.ndarray
    # (m, 4) gradient flow: flow time reached, accepted and rejected solver steps, and
    # the explicit solver's evaluations of the vector field (NaN for other optimizers)
    flow: np.ndarray

    @staticmethod
    def at(
        weights: np.ndarray,
        loss: np.ndarray,
        reason: np.ndarray | None = None,
        runs: np.ndarray | None = None,
        watched: np.ndarray | None = None,
    ) -> "Finished":
        """Points to classify (m, *param_shape) with their losses; by default stopped on
        the gradient test (GRAD), runs 0..m-1, no kink seen along the way."""
        m = len(weights)
        return Finished(
            runs=np.arange(m) if runs is None else np.asarray(runs),
            weights=np.asarray(weights, float),
            steps=np.zeros(m, np.int64),
            newton_steps=np.zeros(m, np.int64),
            step_size=np.zeros(m),
            loss=np.asarray(loss, float),
            grad_norm=np.zeros(m),
            reason=np.full(m, StopReason.GRAD, np.int8) if reason is None else np.asarray(reason),
            watched=np.zeros(m, bool) if watched is None else np.asarray(watched, bool),
            trained_loss=np.full(m, np.nan),
            predicted_steps=np.full(m, -1, np.int64),
            flow=np.full((m, 4), np.nan),
        )

    def select(self, mask: np.ndarray) -> "Finished":
        return Finished(**{key: value[mask] for key, value in vars(self).items()})

    @staticmethod
    def concatenate(parts: "list[Finished]") -> "Finished":
        names = [f.name for f in fields(Finished)]
        return Finished(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in names}
        )


@dataclass
class Classified:
    """The outcome columns of m runs: the same columns for every problem kind, None (or
    NaN) where a column does not apply."""

    status: list  # (m,) Status values
    min_eig: np.ndarray  # (m,) smallest Hessian eigenvalue; NaN where not computed
    decided_by: list  # (m,) DecidedBy values
    symmetry: list  # (m,) block pattern such as "1+5", or "none"
    test_loss: list  # (m,) population loss, or loss on fresh points
    linear_loss: list  # (m,) 1-D students with biases: piecewise linear fit error
    kink_entered: list  # (m,) ... a kink entered the data at some point
    essentially_linear: list  # (m,) ... no kink ever entered and the loss is the linear fit's
    bias_movement: list  # (m,) students with biases: max |b_i(end) - b_i(start)|
    # Finite data (else None): kink pairs at the end point, the stationarity margin
    # (`sweep/kinks/`), SGD's own end loss before the finish, why a fallback decided.
    kinks: list | None = None
    stationarity_margin: list | None = None
    sgd_loss: list | None = None
    fallback_reason: list | None = None
