"""One jitted training segment: up to S optimizer steps (`step.train_step`) for a batch of
runs, on every device, in chunks on a CPU."""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from .. import programs
from ..objectives.data import TrainData
from . import flow
from .run_state import RUNNING, RunState, TrainSpec
from .step import steps_per_update, train_step


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


def platform_of(mesh: Mesh | None) -> str:
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
    chunk = programs.chunk_runs(spec.objective, platform_of(mesh))
    if mesh is None or flow.implicit(spec):  # on one device (`flow.implicit`)
        return _segment(state, data, spec, steps, chunk)
    per_device = jax.shard_map(
        lambda state, data, steps: _segment(state, data, spec, steps, chunk),
        mesh=mesh,
        in_specs=(P("runs"), P(), P()),
        out_specs=(P("runs"), P("runs")),
    )
    return per_device(state, data, steps)
