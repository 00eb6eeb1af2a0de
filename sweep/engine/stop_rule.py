"""The stop rule: why a run stops at its current point, decided on the device."""

import jax
import jax.numpy as jnp

from .run_state import GRAD, LOSS, MAX_STEPS, NONFINITE, PAUSED, RUNNING, TrainSpec


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
