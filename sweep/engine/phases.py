"""Runs moving between phases of training: from float32 to float64, and paused runs
going on (resumed on the host, or in place on the device)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives.data import TrainData
from .run_state import NEVER, RUNNING, RunState


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
