"""The scheduler: continuous batching of runs over all local devices.

Runs of one cell need from hundreds to 100,000 steps, so training a cell in lockstep until
its slowest run finishes wastes most of the work. Instead a fixed-size batch of slots
trains in jitted segments of S steps; after each segment only the small per-run stop
vector comes back to the host, finished runs are retired and their slots refilled with
pending runs. Once the queue is empty and few runs are left, the survivors are compacted
into a batch a quarter the size (a short ladder of sizes, each compiled once per cell
shape), so the tail of a cell does not pay for empty slots.

The batch axis is sharded over a 1-D mesh ("runs") of all local devices. Every run is
independent and starts from its own key (see `init.py`), so results do not depend on
which slot, batch or device a run trained in.
"""

import collections
import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import train
from .init import initial_weights, run_key
from .landscape import gaussian

# Runs in flight per device when the config says 0: enough to fill the vector units of a
# CPU core, or the SMs of a GPU.
DEFAULT_BATCH_PER_DEVICE = {"cpu": 256, "gpu": 8192, "tpu": 8192}
# Smallest batch the tail of a cell is compacted into (per device).
MIN_BATCH_PER_DEVICE = 8


@dataclass
class Finished:
    """Runs that stopped during one segment, as host arrays with leading axis m."""

    runs: np.ndarray  # (m,) run indices within the cell
    weights: np.ndarray  # (m, n, d) final points
    steps: np.ndarray  # (m,) updates applied
    loss: np.ndarray  # (m,) loss at the final point
    grad_norm: np.ndarray  # (m,) gradient norm there
    reason: np.ndarray  # (m,) train.GRAD / LOSS / MAX_STEPS / NONFINITE


@dataclass
class Counters:
    """Work done, for the useful-step fraction and compile checks."""

    steps_computed: int = 0  # slots x steps of every segment
    steps_useful: int = 0  # steps the finished runs actually needed
    segments: int = 0
    batch_sizes: set = field(default_factory=set)

    @property
    def useful_fraction(self):
        return self.steps_useful / max(self.steps_computed, 1)


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnames=("state",))
def start_runs(state, mask, runs, seed, k, scale, step_size, spec):
    """Start run `runs[i]` in every slot i where mask[i]; other slots are unchanged."""
    _, n, d = state.weights.shape
    keys = jax.vmap(lambda r: run_key(seed, k, n, d, r))(runs)
    weights = jax.vmap(lambda key: initial_weights(key, n, d, scale, state.weights.dtype))(keys)
    fresh = train.RunState(
        weights=weights,
        opt_state=train.init_opt_state(spec, weights),
        steps=jnp.zeros_like(state.steps),
        loss=jnp.zeros_like(state.loss),
        grad_norm=jnp.zeros_like(state.grad_norm),
        reason=jnp.full_like(state.reason, train.RUNNING),
        step_size=jnp.full_like(state.step_size, step_size),
    )
    return train.select_runs(mask, fresh, state)


@jax.jit
def _gather(state, index):
    return jax.tree.map(lambda x: x[index], state)


class Engine:
    """Trains the runs of a cell with continuous batching on all local devices."""

    def __init__(self, config, devices=None):
        self.config = config
        self.devices = list(devices or jax.local_devices())
        self.mesh = Mesh(np.array(self.devices), ("runs",))
        self.sharding = NamedSharding(self.mesh, PartitionSpec("runs"))
        self.spec = train.TrainSpec(
            optimizer=config.optimizer,
            grad_tol=config.stop.grad_tol,
            loss_tol=config.stop.loss_tol,
            max_steps=config.stop.max_steps,
        )
        per_device = config.engine.batch_size or DEFAULT_BATCH_PER_DEVICE.get(
            self.devices[0].platform, 256
        ) * len(self.devices)
        self.batch_size = self._round(per_device)
        self.min_batch = self._round(MIN_BATCH_PER_DEVICE * len(self.devices))
        self.counters = Counters()

    def _round(self, size):
        """Round a batch size up to a multiple of the device count."""
        count = len(self.devices)
        return max(count, -(-size // count) * count)

    def _shard(self, state):
        return jax.device_put(state, self.sharding)

    def train(self, cell, runs, seed):
        """Train runs (indices) of `cell`; yields `Finished` batches as runs stop."""
        queue = collections.deque(int(r) for r in runs)
        if not queue:
            return
        teacher = jax.device_put(gaussian.orthonormal_teacher(cell.k, cell.d))
        segment = self.config.engine.segment_steps
        batch = min(self.batch_size, self._round(len(queue)))
        state = self._shard(train.empty_state(self.spec, batch, cell.n, cell.d))
        slot_run = np.full(batch, -1)
        while True:
            free = np.flatnonzero(slot_run < 0)
            if queue and free.size:
                take = free[: len(queue)]
                new_runs = np.zeros(batch, np.int64)
                new_runs[take] = [queue.popleft() for _ in take]
                mask = np.zeros(batch, bool)
                mask[take] = True
                slot_run[take] = new_runs[take]
                state = start_runs(
                    state, mask, new_runs, seed, cell.k, cell.init_scale, cell.step_size, self.spec
                )
            active = np.flatnonzero(slot_run >= 0)
            if not active.size:
                return
            if not queue and batch // 4 >= self.min_batch and active.size <= batch // 4:
                state, slot_run, batch = self._compact(state, slot_run, active, batch // 4)

            state = train.train_segment(state, teacher, self.spec, segment)
            self.counters.segments += 1
            self.counters.steps_computed += batch * segment
            self.counters.batch_sizes.add((cell.shape, batch))

            reason = np.asarray(state.reason)
            finished = np.flatnonzero((reason != train.RUNNING) & (slot_run >= 0))
            if finished.size:
                host = jax.device_get((state.weights, state.steps, state.loss, state.grad_norm))
                weights, steps, loss, grad_norm = (np.asarray(x)[finished] for x in host)
                self.counters.steps_useful += int(steps.sum())
                yield Finished(
                    runs=slot_run[finished].copy(),
                    weights=weights,
                    steps=steps.astype(np.int64),
                    loss=loss,
                    grad_norm=grad_norm,
                    reason=reason[finished],
                )
                slot_run[finished] = -1

    def _compact(self, state, slot_run, active, size):
        """Move the active runs into a smaller batch of `size` slots (rest stay EMPTY)."""
        # Idle slots are frozen, so any of them can pad the new batch.
        idle = np.flatnonzero(slot_run < 0)[0]
        index = np.full(size, idle)
        index[: active.size] = active
        state = self._shard(_gather(state, jnp.asarray(index)))
        new_slot_run = np.full(size, -1)
        new_slot_run[: active.size] = slot_run[active]
        return state, new_slot_run, size
