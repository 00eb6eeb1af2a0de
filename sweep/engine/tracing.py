"""Replays: a training segment that records every step (`History`), with the same
arithmetic as the engine's, so a replayed run retraces its stored trajectory bit for bit."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from .. import programs
from ..objectives.data import TrainData
from . import flow
from .run_state import RUNNING, RunState, TrainSpec
from .segments import platform_of
from .step import steps_per_update, train_step


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
    chunk = programs.chunk_runs(spec.objective, platform_of(mesh))
    if mesh is None or flow.implicit(spec):
        return _traced_segment(state, data, spec, steps, chunk)
    per_device = jax.shard_map(
        lambda state, data: _traced_segment(state, data, spec, steps, chunk),
        mesh=mesh,
        in_specs=(P("runs"), P()),
        out_specs=(P("runs"), P("runs"), P(None, "runs")),
    )
    return per_device(state, data)
