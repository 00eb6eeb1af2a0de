"""How a run starts: its keys, its initial point and its step size.

XLA takes long to optimize threefry hashes, so every hash a start needs runs in programs
of integer arithmetic alone, which are exact at any optimization level and so compiled
for a short compile: the keys (`run_keys`, whose shapes depend only on the batch size, so
one compile serves every cell), then the raw bits of the initial point's draws
(`initial_bits`, `init.record_bits`). The program compiled fully per cell shape
(`_start`) only turns those bits into the very floats `jax.random.normal` would have drawn
(`init.replay_bits`), and sets the step sizes.
"""

import functools
from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..objectives.data import TrainData
from ..objectives.initializers import record_bits, replay_bits, run_key
from ..problems import Problem
from ..programs import quick_to_compile
from . import run_state

# Fold-in tag of the key that orders a run's minibatches (apart from its initial point).
MINIBATCH_ORDER = 1


class CellArgs(NamedTuple):
    """What a run's start needs of its cell (traced: one compile serves every cell)."""

    seed: int
    k: int
    n: int
    d: int
    init_scale: float
    step_size: float

    @staticmethod
    def of(problem: Problem) -> "CellArgs":
        cell = problem.cell
        return CellArgs(problem.config.seed, cell.k, cell.n, cell.d, cell.init_scale,
                        cell.step_size)  # fmt: skip


@quick_to_compile(static_argnames=(), every_cell=True)
def run_keys(cell: CellArgs, runs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Key data (B, 2) of each run's initial point (`init.run_key`) and of its minibatch
    order."""
    keys = jax.vmap(lambda r: run_key(cell.seed, cell.k, cell.n, cell.d, r))(runs)
    order = jax.vmap(lambda key: jax.random.fold_in(key, MINIBATCH_ORDER))(keys)
    return jax.random.key_data(keys), jax.random.key_data(order)


@quick_to_compile(static_argnames=("objective",))
def initial_bits(keys: jax.Array, objective: Hashable) -> list[jax.Array]:
    """The raw bits of every draw of each run's initial point (`init.record_bits`), from
    the key data (B, 2): a list with one (B, *shape) array per draw."""

    def one(key):
        found = []
        objective.init(jax.random.wrap_key_data(key), 1.0, jnp.float64, record_bits(found))
        return found

    return jax.vmap(one)(keys)


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnames=("state",))
def _start(state, mask, keys, order, bits, cell, data, spec):
    objective = spec.objective

    def initial(key, bits):
        # Drawn in float64 and rounded, so that the float32 phase starts each run where
        # the float64 engine would.
        return objective.init(key, cell.init_scale, jnp.float64, replay_bits(bits))

    weights = jax.vmap(initial)(jax.random.wrap_key_data(keys), bits)
    rates = jnp.full_like(state.step_size, cell.step_size)
    if spec.optimizer.step_unit == "ntk":
        rates = rates / jax.vmap(objective.ntk_max_eigenvalue, (0, None))(weights, data)
    weights = weights.astype(state.weights.dtype)
    fresh = run_state.RunState(
        weights=weights,
        opt_state=run_state.init_opt_state(spec, weights, rates, data),
        steps=jnp.zeros_like(state.steps),
        loss=jnp.zeros_like(state.loss),
        grad_norm=jnp.zeros_like(state.grad_norm),
        reason=jnp.full_like(state.reason, run_state.RUNNING),
        pause_at=jnp.full_like(state.pause_at, spec.polish_after or run_state.NEVER),
        step_size=rates,
        key=order,
        watched=jnp.zeros_like(state.watched),
        finish_below=jnp.full_like(state.finish_below, spec.basin_grad),
    )
    return run_state.select_runs(mask, fresh, state)


def start_runs(
    state: run_state.RunState,
    mask: jax.Array,
    runs: jax.Array,
    cell: CellArgs,
    data: TrainData,
    spec: run_state.TrainSpec,
) -> run_state.RunState:
    """Start run `runs[i]` in every slot i where mask[i]; other slots are unchanged
    (`state` is donated)."""
    keys, order = run_keys(cell, runs)
    # Through the host: handed from one device to the batch's sharding, the bits would
    # cost a slicing program compiled per cell shape.
    bits = jax.device_get(initial_bits(keys, spec.objective))
    return _start(state, mask, keys, order, bits, cell, data, spec)
