"""The state of a batch of runs (`RunState`), what is static about training
(`TrainSpec`), and the slots' bookkeeping: empty slots, runs placed into and chosen
between batches.

Each run carries its own stop reason (`outcomes.StopReason`); once set, the run is frozen
(no update, its step count stays), so the recorded steps, loss and gradient norm are exact
for its final point.
"""

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from ..config import OptimizerSettings
from ..objectives.data import TrainData
from ..outcomes import StopReason
from . import flow
from .optimizers import make_optimizer

# Plain ints for traced code (JAX takes no enum members as scalars).
RUNNING, GRAD, LOSS = int(StopReason.RUNNING), int(StopReason.GRAD), int(StopReason.LOSS)
MAX_STEPS, NONFINITE = int(StopReason.MAX_STEPS), int(StopReason.NONFINITE)
EMPTY, PAUSED = int(StopReason.EMPTY), int(StopReason.PAUSED)
NEVER = jnp.iinfo(jnp.int32).max  # pause_at of a run that never pauses


@dataclass(frozen=True)
class TrainSpec:
    """Everything static about training (hashable: one compile per value and shape)."""

    optimizer: OptimizerSettings
    grad_tol: float
    loss_tol: float
    max_steps: int
    # What is minimized (`problems.Objective`): its loss_and_grad(params, data) drives the
    # step. A value (not a bound method), so equal specs share compiled code.
    objective: Any
    polish_after: int = 0  # first pause for the Newton polish (0: never)
    # Pause a run for the basin finish (`finishes/basin.py`) once |grad| <= this (0: never); a run
    # the finish does not take pauses again at a tenth of it.
    basin_grad: float = 0.0
    stiff: bool = False  # gradient flow's implicit phase (`flow.py`)


class RunState(NamedTuple):
    weights: jax.Array  # (B, *param_shape) current point of each run
    opt_state: Any  # optimizer state, every leaf with leading axis B
    steps: jax.Array  # (B,) int32: updates applied so far
    loss: jax.Array  # (B,) loss at the last evaluated point
    grad_norm: jax.Array  # (B,) Frobenius norm of the gradient there
    reason: jax.Array  # (B,) int8: RUNNING, or why the run stopped
    pause_at: jax.Array  # (B,) int32: step at which the run pauses for a polish
    step_size: jax.Array  # (B,) learning rate of each run
    key: jax.Array  # (B, 2) uint32: key data of each run's minibatch order
    watched: jax.Array  # (B,) bool: the objective's `watch` held at some evaluated point
    finish_below: jax.Array  # (B,) the run pauses for the basin finish at |grad| <= this


def init_opt_state(
    spec: TrainSpec, weights: jax.Array, step_size: jax.Array = None, data: TrainData = None
) -> Any:
    """Optimizer state for a batch of params (B, ...); gradient flow's (`flow.FlowState`)
    also needs each run's first step and the data."""
    if spec.optimizer.flow:
        start = functools.partial(flow.init, spec)
        return jax.vmap(start, (0, 0, None))(weights, step_size, data)
    return jax.vmap(make_optimizer(spec.optimizer, 1.0).init)(weights)


def empty_state(
    spec: TrainSpec,
    batch: int,
    shape: tuple[int, ...],
    dtype: DTypeLike = jnp.float64,
    data: TrainData = None,
) -> RunState:
    """A batch of EMPTY slots (frozen until refilled) for params of the given shape, made
    on the host (device arrays of new shapes would each compile a program)."""
    weights = np.zeros((batch, *shape), dtype)
    if spec.optimizer.flow:  # its shapes only: the state is set when a run starts
        start = functools.partial(init_opt_state, spec)
        found = jax.eval_shape(start, weights, np.ones(batch), data)
        opt_state = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), found)
    else:
        opt_state = init_opt_state(spec, weights)
    return RunState(
        weights=weights,
        opt_state=opt_state,
        steps=np.zeros(batch, np.int32),
        loss=np.zeros(batch, dtype),
        grad_norm=np.zeros(batch, dtype),
        reason=np.full(batch, EMPTY, np.int8),
        pause_at=np.full(batch, NEVER, np.int32),
        step_size=np.zeros(batch, np.float64),  # exact in the float32 phase too
        key=np.zeros((batch, 2), np.uint32),
        watched=np.zeros(batch, bool),
        finish_below=np.zeros(batch, dtype),
    )


def select_runs(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per-run choice between two pytrees whose leaves have leading axis B."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


@functools.partial(jax.jit, donate_argnames=("state",))
def place_runs(state: RunState, mask: jax.Array, rows: RunState) -> RunState:
    """Slots in `mask` take the runs in `rows` (a batch of the same shape): runs that left
    the batch for a while come back exactly as they left."""
    return select_runs(mask, rows, state)
