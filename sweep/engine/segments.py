"""One jitted training segment: up to S optimizer steps for a batch of runs.

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
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jax.typing import DTypeLike

from .. import programs
from ..config import OptimizerSettings
from ..objectives.data import TrainData
from ..outcomes import StopReason
from . import flow

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


_OPTIMIZERS = {
    "gd": lambda spec, rate: optax.sgd(rate),
    "momentum": lambda spec, rate: optax.sgd(rate, momentum=spec.momentum),
    "adam": lambda spec, rate: optax.adam(rate, b1=spec.b1, b2=spec.b2),
}


def make_optimizer(
    spec: OptimizerSettings, step_size: float | jax.Array
) -> optax.GradientTransformation:
    """The optax transformation for an Optimizer config and a (possibly traced) step size."""
    return _OPTIMIZERS[spec.kind](spec, step_size)


def schedule(spec: TrainSpec, steps: jax.Array) -> jax.Array:
    """Step-size factor after `steps` updates (a traced int)."""
    t = steps.astype(jnp.float64)
    if spec.optimizer.schedule == "cosine":  # from 1 down to 0 at max_steps
        return 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(t / spec.max_steps, 1.0)))
    if spec.optimizer.schedule == "inverse_time":
        return 1.0 / (1.0 + t / spec.optimizer.decay_steps)
    return jnp.ones_like(t)


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


def stop_reason(
    loss: jax.Array,
    grad_norm: jax.Array,
    steps: jax.Array,
    pause_at: jax.Array,
    spec: TrainSpec,
    finish_below: jax.Array | None = None,
) -> jax.Array:
    """Why each run stops at its current point (RUNNING if it does not)."""
    reason = jnp.full(loss.shape, RUNNING, jnp.int8)
    reason = jnp.where(steps >= pause_at, PAUSED, reason)
    if finish_below is not None:
        reason = jnp.where(grad_norm <= finish_below, PAUSED, reason)
    reason = jnp.where(steps >= spec.max_steps, MAX_STEPS, reason)
    if spec.loss_tol > 0:  # rounding can make the loss at a global minimum slightly negative
        reason = jnp.where(loss <= spec.loss_tol, LOSS, reason)
    reason = jnp.where(grad_norm <= spec.grad_tol, GRAD, reason)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    return jnp.where(finite, reason, NONFINITE).astype(jnp.int8)


def _gradient_step(weights, opt_state, grad, step_size, steps, spec):
    """One full-batch update of one run with the gradient already at hand."""
    # In the float32 phase the update is float32 too; the step size itself stays float64.
    rate = (step_size * schedule(spec, steps)).astype(weights.dtype)
    updates, opt_state = make_optimizer(spec.optimizer, rate).update(grad, opt_state)
    return optax.apply_updates(weights, updates), opt_state


def _minibatch_epoch(weights, opt_state, key, step_size, steps, data, spec):
    """One epoch of minibatch updates of one run: a fresh order of the N points from the
    run's own key and its epoch, then N // batch_size steps (the remainder is skipped)."""
    inputs, targets = data
    size = spec.optimizer.batch_size
    per_epoch = inputs.shape[0] // size
    key = jax.random.fold_in(jax.random.wrap_key_data(key), steps // per_epoch)
    order = jax.random.permutation(key, inputs.shape[0])

    def body(j, carry):
        weights, opt_state = carry
        index = jax.lax.dynamic_slice(order, (j * size,), (size,))
        _, grad = spec.objective.loss_and_grad(weights, (inputs[index], targets[index]))
        return _gradient_step(weights, opt_state, grad, step_size, steps + j, spec)

    return jax.lax.fori_loop(0, per_epoch, body, (weights, opt_state))


def steps_per_update(spec: TrainSpec, data: TrainData) -> int:
    """Optimizer steps in one update of `train_step`: 1, or an epoch of minibatches."""
    if not spec.optimizer.batch_size:
        return 1
    return data[0].shape[0] // spec.optimizer.batch_size


def train_step(state: RunState, data: TrainData, spec: TrainSpec) -> RunState:
    """One update for every running run; stopped runs are left untouched.

    The stop test looks at the full-batch loss and gradient. With minibatches
    (optimizer.batch_size > 0) an update is a whole epoch, so the test runs once per epoch
    and costs about as much as the epoch itself.
    """
    loss, grad = jax.vmap(spec.objective.loss_and_grad, (0, None))(state.weights, data)
    grad_norm = jnp.sqrt(jnp.sum(grad * grad, axis=tuple(range(1, grad.ndim))))
    running = state.reason == RUNNING
    reason = stop_reason(loss, grad_norm, state.steps, state.pause_at, spec, state.finish_below)
    active = running & (reason == RUNNING)
    watched = state.watched | (
        running & jax.vmap(spec.objective.watch, (0, None))(state.weights, data)
    )

    if spec.optimizer.flow:
        moved, opt_state = jax.vmap(functools.partial(flow.step, spec), (0, 0, None))(
            state.weights, state.opt_state, data
        )
    elif spec.optimizer.batch_size:
        moved, opt_state = jax.vmap(_minibatch_epoch, (0, 0, 0, 0, 0, None, None))(
            state.weights, state.opt_state, state.key, state.step_size, state.steps, data, spec
        )
    else:
        moved, opt_state = jax.vmap(_gradient_step, (0, 0, 0, 0, 0, None))(
            state.weights, state.opt_state, grad, state.step_size, state.steps, spec
        )
    taken = steps_per_update(spec, data)
    return RunState(
        weights=select_runs(active, moved, state.weights),
        opt_state=select_runs(active, opt_state, state.opt_state),
        steps=state.steps + taken * active.astype(state.steps.dtype),
        loss=jnp.where(running, loss, state.loss),
        grad_norm=jnp.where(running, grad_norm, state.grad_norm),
        reason=jnp.where(running, reason, state.reason),
        pause_at=state.pause_at,
        step_size=state.step_size,
        key=state.key,
        watched=watched,
        finish_below=state.finish_below,
    )


def _loop(state, data, spec, steps):
    """Up to `steps` updates of a chunk of runs, ending once they have all stopped.
    Returns the new state and the updates taken."""

    def cond(carry):
        done, state = carry
        return (done < steps) & jnp.any(state.reason == RUNNING)

    def body(carry):
        done, state = carry
        return done + 1, train_step(state, data, spec)

    done, state = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), state))
    return state, done


def _segment(state, data, spec, steps, chunk):
    """The segment on one device's slice of the batch, a chunk after another. Returns the
    new state and the run-steps computed (runs x optimizer steps), shape (1,)."""
    size = programs.chunk_size(state.reason.shape[0], chunk)
    state, done = jax.lax.map(
        lambda part: _loop(part, data, spec, steps), programs.split(state, size)
    )
    computed = jnp.sum(done.astype(int)) * size * steps_per_update(spec, data)
    return programs.join(state), computed[None]


@functools.partial(jax.jit, donate_argnames=("state",))
def place_runs(state: RunState, mask: jax.Array, rows: RunState) -> RunState:
    """Slots in `mask` take the runs in `rows` (a batch of the same shape): runs that left
    the batch for a while come back exactly as they left."""
    return select_runs(mask, rows, state)


def resumed(rows: RunState) -> RunState:
    """Host rows of runs paused for the basin finish that did not finish: running again,
    to pause at a tenth of the gradient norm (as `resume_runs` does in place)."""
    return rows._replace(
        reason=np.full_like(rows.reason, RUNNING), finish_below=rows.finish_below / 10
    )


def in_float32(data: TrainData) -> TrainData:
    """The training data of the float32 phase: float arrays in float32."""
    return jax.tree.map(
        lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, data
    )


def in_float64(rows: RunState, finish_below: float) -> RunState:
    """Host rows of runs from the float32 phase, every float in float64, running again
    with the float64 engine's `finish_below`: they go on from where they stopped, to
    decide their stop in float64."""

    def widen(x):
        x = np.asarray(x)
        return x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x

    rows = jax.tree.map(widen, rows)
    return rows._replace(
        reason=np.full_like(rows.reason, RUNNING),
        finish_below=np.full_like(rows.finish_below, finish_below),
    )


@functools.partial(jax.jit, donate_argnames=("state",))
def resume_runs(state: RunState, mask: jax.Array) -> RunState:
    """Paused runs in `mask` go on training: one paused at its checkpoint pauses again at
    twice the steps, one paused for the basin finish at a tenth of the gradient norm."""
    pause_at = jnp.minimum(state.pause_at.astype(jnp.int64) * 2, NEVER).astype(jnp.int32)
    at_checkpoint = mask & (state.steps >= state.pause_at)
    in_basin = mask & (state.grad_norm <= state.finish_below)
    return state._replace(
        reason=jnp.where(mask, RUNNING, state.reason).astype(jnp.int8),
        pause_at=jnp.where(at_checkpoint, pause_at, state.pause_at),
        finish_below=jnp.where(in_basin, state.finish_below / 10, state.finish_below),
    )


def _platform(mesh: Mesh | None) -> str:
    return mesh.devices.flat[0].platform if mesh is not None else jax.default_backend()


@functools.partial(jax.jit, static_argnames=("spec", "mesh"), donate_argnames=("state",))
def train_segment(
    state: RunState, data: TrainData, spec: TrainSpec, steps: int, mesh: Mesh | None = None
) -> tuple[RunState, jax.Array]:
    """Up to `steps` updates (`train_step`) for a batch of runs.

    Returns the new RunState and the run-steps computed on each device (runs x optimizer
    steps, frozen runs of a chunk that ran included), shape (devices,). `steps` is
    traced, so segments of any length share one compiled program. With a `mesh` (1-D,
    axis "runs"), every device loops over its own slice of the batch, in chunks on a CPU
    (`chunk_runs`): the loop's stop test then needs no communication between devices, and
    a chunk whose runs have all stopped ends its loop early.
    """
    chunk = programs.chunk_runs(spec.objective, _platform(mesh))
    if mesh is None or flow.implicit(spec):  # on one device (`flow.implicit`)
        return _segment(state, data, spec, steps, chunk)
    per_device = jax.shard_map(
        lambda state, data, steps: _segment(state, data, spec, steps, chunk),
        mesh=mesh,
        in_specs=(P("runs"), P(), P()),
        out_specs=(P("runs"), P("runs")),
    )
    return per_device(state, data, steps)


class History(NamedTuple):
    """What `trace_segment` records at every step, each (S, B)."""

    steps: jax.Array  # updates applied before the step: the point the loss is taken at
    loss: jax.Array  # loss there
    grad_norm: jax.Array  # gradient norm there
    evaluated: jax.Array  # bool: the run was training, so the entries are its own


def _traced_segment(state, data, spec, steps, chunk):
    """`_segment` as a fixed scan that records every step, in the same chunks (so the
    same arithmetic)."""

    def body(state, _):
        new = train_step(state, data, spec)
        running = state.reason == RUNNING
        return new, History(state.steps, new.loss, new.grad_norm, running)

    def scan(part):
        part, history = jax.lax.scan(body, part, None, length=steps)
        return part, jax.tree.map(lambda x: x.T, history)  # runs first, as the state

    batch = state.reason.shape[0]
    state, history = jax.lax.map(scan, programs.split(state, programs.chunk_size(batch, chunk)))
    computed = steps * batch * steps_per_update(spec, data) * jnp.ones(1, int)
    return programs.join(state), computed, jax.tree.map(lambda x: programs.join(x).T, history)


@functools.partial(jax.jit, static_argnames=("spec", "steps", "mesh"), donate_argnames=("state",))
def trace_segment(
    state: RunState, data: TrainData, spec: TrainSpec, steps: int, mesh: Mesh | None = None
) -> tuple[RunState, jax.Array, History]:
    """`train_segment` that also records every step (`History`), for replays.

    The same `train_step` in the same chunks, so a run's trajectory is the one the engine
    trains, bit for bit; `steps` is static (a fixed scan), so replays use one segment
    length.
    """
    chunk = programs.chunk_runs(spec.objective, _platform(mesh))
    if mesh is None or flow.implicit(spec):
        return _traced_segment(state, data, spec, steps, chunk)
    per_device = jax.shard_map(
        lambda state, data: _traced_segment(state, data, spec, steps, chunk),
        mesh=mesh,
        in_specs=(P("runs"), P()),
        out_specs=(P("runs"), P("runs"), P(None, "runs")),
    )
    return per_device(state, data)
