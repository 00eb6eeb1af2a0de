"""One training update for every running run: a full-batch step, an epoch of minibatches,
or a step of gradient flow's solver; the stop rule at the new point."""

import functools

import jax
import jax.numpy as jnp
import optax

from ..objectives.data import TrainData
from . import flow
from .optimizers import make_optimizer, schedule
from .run_state import RUNNING, RunState, TrainSpec, select_runs
from .stop_rule import stop_reason


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
