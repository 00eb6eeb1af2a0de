"""One jitted training segment: `lax.scan` over S optimizer steps for a batch of runs.

Each run carries its own stop reason; once set, the run is frozen (no update, its step
count stays), so the recorded steps, loss and gradient norm are exact for its final point.
"""

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from .config import Optimizer
from .landscape import Landscape

# Stop reasons, stored per run. EMPTY marks a slot that holds no run; NEWTON a run that
# reached grad_tol through the Newton polish (`polish.py`). PAUSED holds a run at exactly
# its `pause_at` step for the host to polish: the polish then starts from the same point
# whatever the batch or segment length, and a run that is not finished there resumes.
# PLATEAU: the loss stopped falling between two pauses (`engine.settle`).
RUNNING, GRAD, LOSS, MAX_STEPS, NONFINITE, EMPTY, NEWTON, PAUSED, PLATEAU = range(9)
REASON_NAMES = (
    "running", "grad_tol", "loss_tol", "max_steps", "nonfinite", "empty", "newton", "paused",
    "plateau",
)  # fmt: skip
NEVER = jnp.iinfo(jnp.int32).max
CONVERGED = (GRAD, LOSS, NEWTON, PLATEAU)


@dataclass(frozen=True)
class TrainSpec:
    """Everything static about training (hashable: one compile per value and shape)."""

    optimizer: Optimizer
    grad_tol: float
    loss_tol: float
    max_steps: int
    polish_after: int = 0  # first pause for the Newton polish (0: never)
    # What is minimized: its loss_and_grad(params, data) is the step's objective. A value
    # (not a bound method), so equal specs share compiled code.
    landscape: Any = Landscape()


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
    watched: jax.Array  # (B,) bool: the landscape's `watch` held at some evaluated point


def make_optimizer(spec, step_size):
    """The optax transformation for an Optimizer config and a (possibly traced) step size."""
    if spec.kind == "gd":
        return optax.sgd(step_size)
    if spec.kind == "momentum":
        return optax.sgd(step_size, momentum=spec.momentum)
    if spec.kind == "adam":
        return optax.adam(step_size, b1=spec.b1, b2=spec.b2)
    raise ValueError(f"unknown optimizer {spec.kind!r}")


def schedule(spec, steps):
    """Step-size factor after `steps` updates (a traced int)."""
    t = steps.astype(jnp.float64)
    if spec.optimizer.schedule == "cosine":  # from 1 down to 0 at max_steps
        return 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(t / spec.max_steps, 1.0)))
    if spec.optimizer.schedule == "inverse_time":
        return 1.0 / (1.0 + t / spec.optimizer.decay_steps)
    return jnp.ones_like(t)


def init_opt_state(spec, weights):
    """Optimizer state for a batch of params (B, ...)."""
    return jax.vmap(make_optimizer(spec.optimizer, 1.0).init)(weights)


def empty_state(spec, batch, shape, dtype=jnp.float64):
    """A batch of EMPTY slots (frozen until refilled) for params of the given shape."""
    weights = jnp.zeros((batch, *shape), dtype)
    return RunState(
        weights=weights,
        opt_state=init_opt_state(spec, weights),
        steps=jnp.zeros(batch, jnp.int32),
        loss=jnp.zeros(batch, dtype),
        grad_norm=jnp.zeros(batch, dtype),
        reason=jnp.full(batch, EMPTY, jnp.int8),
        pause_at=jnp.full(batch, NEVER, jnp.int32),
        step_size=jnp.zeros(batch, dtype),
        key=jnp.zeros((batch, 2), jnp.uint32),
        watched=jnp.zeros(batch, bool),
    )


def select_runs(mask, new, old):
    """Per-run choice between two pytrees whose leaves have leading axis B."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


def stop_reason(loss, grad_norm, steps, pause_at, spec):
    """Why each run stops at its current point (RUNNING if it does not)."""
    reason = jnp.full(loss.shape, RUNNING, jnp.int8)
    reason = jnp.where(steps >= pause_at, PAUSED, reason)
    reason = jnp.where(steps >= spec.max_steps, MAX_STEPS, reason)
    if spec.loss_tol > 0:  # rounding can make the loss at a global minimum slightly negative
        reason = jnp.where(loss <= spec.loss_tol, LOSS, reason)
    reason = jnp.where(grad_norm <= spec.grad_tol, GRAD, reason)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    return jnp.where(finite, reason, NONFINITE).astype(jnp.int8)


def _gradient_step(weights, opt_state, grad, step_size, steps, spec):
    """One full-batch update of one run with the gradient already at hand."""
    rate = step_size * schedule(spec, steps)
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
        _, grad = spec.landscape.loss_and_grad(weights, (inputs[index], targets[index]))
        return _gradient_step(weights, opt_state, grad, step_size, steps + j, spec)

    return jax.lax.fori_loop(0, per_epoch, body, (weights, opt_state))


def steps_per_update(spec, data):
    """Optimizer steps in one update of `train_step`: 1, or an epoch of minibatches."""
    if not spec.optimizer.batch_size:
        return 1
    return data[0].shape[0] // spec.optimizer.batch_size


def train_step(state, data, spec):
    """One update for every running run; stopped runs are left untouched.

    The stop test looks at the full-batch loss and gradient. With minibatches
    (optimizer.batch_size > 0) an update is a whole epoch, so the test runs once per epoch
    and costs about as much as the epoch itself.
    """
    loss, grad = jax.vmap(spec.landscape.loss_and_grad, (0, None))(state.weights, data)
    grad_norm = jnp.sqrt(jnp.sum(grad * grad, axis=tuple(range(1, grad.ndim))))
    running = state.reason == RUNNING
    reason = stop_reason(loss, grad_norm, state.steps, state.pause_at, spec)
    active = running & (reason == RUNNING)
    watched = state.watched | (
        running & jax.vmap(spec.landscape.watch, (0, None))(state.weights, data)
    )

    if spec.optimizer.batch_size:
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
    )


def _segment(state, data, spec, steps):
    """The segment on one device's slice of the batch; `done` has shape (1,)."""

    def cond(carry):
        done, state = carry
        return (done < steps) & jnp.any(state.reason == RUNNING)

    def body(carry):
        done, state = carry
        return done + 1, train_step(state, data, spec)

    done, state = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), state))
    return state, (done * steps_per_update(spec, data))[None]


@functools.partial(jax.jit, donate_argnames=("state",))
def resume_runs(state, mask):
    """Paused runs in `mask` go on training, to pause again at twice the steps."""
    pause_at = jnp.minimum(state.pause_at.astype(jnp.int64) * 2, NEVER).astype(jnp.int32)
    return state._replace(
        reason=jnp.where(mask, RUNNING, state.reason).astype(jnp.int8),
        pause_at=jnp.where(mask, pause_at, state.pause_at),
    )


@functools.partial(jax.jit, static_argnames=("spec", "mesh"), donate_argnames=("state",))
def train_segment(state, data, spec, steps, mesh=None):
    """Up to `steps` updates (`train_step`) for a batch of runs.

    Returns the new RunState and the optimizer steps taken on each device, shape (devices,).
    `steps` is traced, so segments of any length share one compiled program. With a
    `mesh` (1-D, axis "runs"), every device loops over its own slice of the batch: the
    loop's stop test then needs no communication between devices, and a device whose
    runs have all stopped ends its segment early.
    """
    if mesh is None:
        return _segment(state, data, spec, steps)
    per_device = jax.shard_map(
        lambda state, data, steps: _segment(state, data, spec, steps),
        mesh=mesh,
        in_specs=(P("runs"), P(), P()),
        out_specs=(P("runs"), P("runs")),
    )
    return per_device(state, data, steps)
