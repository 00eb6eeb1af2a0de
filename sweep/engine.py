"""The scheduler: continuous batching of runs over all local devices.

Runs of one cell need from hundreds to 100,000 steps, so training a cell in lockstep until
its slowest run finishes wastes most of the work. Instead a fixed-size batch of slots
trains in jitted segments of S steps (S adapts to the run lengths seen, see
`_SegmentLength`); after each segment only the small per-run stop vector comes back to
the host, finished runs are retired and their slots refilled with pending runs. Once the
queue is empty and at most half the slots are busy, the survivors are compacted into the
next smaller batch on a ladder of sizes (devices x 2^j, each compiled once per cell
shape), so the tail of a cell does not pay for empty slots. A run that pauses at a polish
checkpoint (`train.PAUSED`) is Newton-polished on the host (`polish.py`): it retires if
that finishes it, and otherwise resumes where it paused.

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

from . import datasets, landscape, polish, train
from .init import run_key

# Runs in flight per device when the config says 0 (and the cell has 4x as many runs):
# enough to fill the vector units of a CPU core, or the SMs of a GPU.
DEFAULT_BATCH_PER_DEVICE = {"cpu": 256, "gpu": 8192, "tpu": 8192}


@dataclass
class Finished:
    """Runs that stopped during one segment, as host arrays with leading axis m."""

    runs: np.ndarray  # (m,) run indices within the cell
    weights: np.ndarray  # (m, *param_shape) final points
    steps: np.ndarray  # (m,) updates applied
    newton_steps: np.ndarray  # (m,) Newton polish iterations (0: not polished)
    step_size: np.ndarray  # (m,) each run's step size
    loss: np.ndarray  # (m,) loss at the final point
    grad_norm: np.ndarray  # (m,) gradient norm there
    reason: np.ndarray  # (m,) train.GRAD / LOSS / NEWTON / MAX_STEPS / NONFINITE
    watched: np.ndarray  # (m,) the landscape's `watch` held at some point of the run

    def select(self, mask):
        return Finished(**{key: value[mask] for key, value in vars(self).items()})


@dataclass
class Counters:
    """Work done, for the useful-step fraction and compile checks."""

    steps_computed: int = 0  # slots x steps of every segment
    steps_useful: int = 0  # steps the finished runs actually needed
    segments: int = 0
    polish_attempts: int = 0
    polished: int = 0  # runs the Newton polish finished
    batch_sizes: set = field(default_factory=set)

    @property
    def useful_fraction(self):
        return self.steps_useful / max(self.steps_computed, 1)


# Fold-in tag of the key that orders a run's minibatches (apart from its initial point).
_MINIBATCH_ORDER = 1


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnames=("state",))
def start_runs(state, mask, runs, seed, k, scale, step_size, data, spec):
    """Start run `runs[i]` in every slot i where mask[i]; other slots are unchanged."""
    n, d = spec.landscape.n, spec.landscape.d
    keys = jax.vmap(lambda r: run_key(seed, k, n, d, r))(runs)
    weights = jax.vmap(lambda key: spec.landscape.init(key, scale, state.weights.dtype))(keys)
    rates = jnp.full_like(state.step_size, step_size)
    if spec.optimizer.step_unit == "ntk":
        rates = rates / jax.vmap(spec.landscape.ntk_max_eigenvalue, (0, None))(weights, data)
    fresh = train.RunState(
        weights=weights,
        opt_state=train.init_opt_state(spec, weights),
        steps=jnp.zeros_like(state.steps),
        loss=jnp.zeros_like(state.loss),
        grad_norm=jnp.zeros_like(state.grad_norm),
        reason=jnp.full_like(state.reason, train.RUNNING),
        pause_at=jnp.full_like(state.pause_at, spec.polish_after or train.NEVER),
        step_size=rates,
        key=jax.vmap(lambda key: jax.random.key_data(jax.random.fold_in(key, _MINIBATCH_ORDER)))(
            keys
        ),
        watched=jnp.zeros_like(state.watched),
    )
    return train.select_runs(mask, fresh, state)


def train_spec(config, cell):
    """The TrainSpec of a cell (its landscape knows the cell's shapes)."""
    return train.TrainSpec(
        landscape=landscape.for_problem(config.problem, cell, config.init),
        optimizer=config.optimizer,
        grad_tol=config.stop.grad_tol,
        loss_tol=config.stop.loss_tol,
        max_steps=config.stop.max_steps,
        polish_after=config.stop.polish_after,
    )


def settle(out, data, spec, plateau_tol, previous_loss, counters=None):
    """Decide the runs of `out` that reached a checkpoint (PAUSED, or MAX_STEPS), in place.

    A float64 Newton polish (if `spec.polish_after`) that reaches grad_tol finishes a run
    (NEWTON). Failing that, a run whose loss fell by at most `plateau_tol` (relative) since
    its previous checkpoint stops on a plateau (PLATEAU): the minima of an empirical ReLU
    loss often sit on a kink, where no point has a small gradient. `previous_loss` maps
    run -> loss at its last checkpoint and is updated here. Others are left as they are.
    """
    for i in np.flatnonzero(np.isin(out.reason, (train.PAUSED, train.MAX_STEPS))):
        if spec.polish_after:
            weights, loss, grad_norm, iterations, converged = polish.newton_polish(
                out.weights[i], data, spec.grad_tol, spec.landscape
            )
            if counters is not None:
                counters.polish_attempts += 1
            if bool(converged):
                out.weights[i] = np.asarray(weights)
                out.loss[i], out.grad_norm[i] = float(loss), float(grad_norm)
                out.newton_steps[i] = int(iterations)
                out.reason[i] = train.NEWTON
                if counters is not None:
                    counters.polished += 1
                continue
        if plateau_tol:
            run, loss = int(out.runs[i]), float(out.loss[i])
            before = previous_loss.get(run)
            if before is not None and before - loss <= plateau_tol * abs(before):
                out.reason[i] = train.PLATEAU
            previous_loss[run] = loss


class Engine:
    """Trains the runs of a cell with continuous batching on all local devices."""

    def __init__(self, config, devices=None):
        self.config = config
        self.devices = list(devices or jax.local_devices())
        self.mesh = Mesh(np.array(self.devices), ("runs",))
        self.sharding = NamedSharding(self.mesh, PartitionSpec("runs"))
        size = config.engine.batch_size or DEFAULT_BATCH_PER_DEVICE.get(
            self.devices[0].platform, 256
        ) * len(self.devices)
        self.batch_size = self._round(size)
        self.min_batch = len(self.devices)
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
        spec = train_spec(self.config, cell)
        data = jax.device_put(datasets.make(self.config.problem, cell, seed).train)
        per_update = train.steps_per_update(spec, data)
        batch = min(self.batch_size, self._ladder(len(queue)))
        if not self.config.engine.batch_size:
            # Slots are refilled only while runs are queued: with at most a quarter of
            # the cell in flight, the tail (queue empty, slots emptying) stays short.
            batch = min(batch, self._ladder(-(-len(queue) // 4)))
        state = self._shard(train.empty_state(spec, batch, spec.landscape.param_shape()))
        slot_run = np.full(batch, -1)
        segment = _SegmentLength(self.config.engine.segment_steps)
        previous_loss = {}  # run -> its loss at its last checkpoint, for the plateau test
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
                    state, mask, new_runs, seed, cell.k, cell.init_scale, cell.step_size, data, spec
                )
            active = np.flatnonzero(slot_run >= 0)
            if not active.size:
                return
            if not queue and active.size <= batch // 2 and batch > self.min_batch:
                state, index, batch = self._compact(state, slot_run, active)
                slot_run = slot_run[index]
                slot_run[active.size :] = -1

            updates = max(1, segment.length // per_update)
            state, taken = train.train_segment(state, data, spec, updates, self.mesh)
            reason = np.asarray(state.reason)
            self.counters.segments += 1
            self.counters.steps_computed += batch // len(self.devices) * int(np.sum(taken))
            self.counters.batch_sizes.add((cell.shape, batch))

            slots = np.flatnonzero((reason != train.RUNNING) & (slot_run >= 0))
            if not slots.size:
                continue
            host = jax.device_get(
                (
                    state.weights,
                    state.steps,
                    state.loss,
                    state.grad_norm,
                    state.step_size,
                    state.watched,
                )
            )
            weights, steps, loss, grad_norm, step_size, watched = (
                np.asarray(x)[slots] for x in host
            )
            out = Finished(
                runs=slot_run[slots].copy(),
                weights=weights,
                steps=steps.astype(np.int64),
                newton_steps=np.zeros(slots.size, np.int64),
                step_size=step_size,
                loss=loss,
                grad_norm=grad_norm,
                reason=reason[slots].copy(),
                watched=watched,
            )
            settle(out, data, spec, self.config.stop.plateau_tol, previous_loss, self.counters)
            done = out.reason != train.PAUSED
            if not done.all():  # the polish did not finish them: back to gradient descent
                state = train.resume_runs(state, np.isin(np.arange(batch), slots[~done]))
            slot_run[slots[done]] = -1
            out = out.select(done)
            self.counters.steps_useful += int(out.steps.sum())
            segment.observe(out.steps)
            if out.runs.size:
                yield out

    def _ladder(self, count):
        """The batch size for `count` runs: devices x a power of two, at least `count`."""
        size = self.min_batch
        while size < count:
            size *= 2
        return size

    def _compact(self, state, slot_run, active):
        """Move the active runs into the smallest batch on the ladder that holds them.

        Returns the new state, the old slot of each new slot, and the new size; the new
        slots past the active runs hold copies of an idle (frozen) slot.
        """
        size = self._ladder(active.size)
        index = np.full(size, np.flatnonzero(slot_run < 0)[0])
        index[: active.size] = active
        # Through the host: the state is small, and a gather on the devices would cost a
        # compile per pair of sizes.
        host = jax.device_get(state)
        return self._shard(jax.tree.map(lambda x: np.asarray(x)[index], host)), index, size


class _SegmentLength:
    """Steps per segment: fixed if configured, else a small fraction of a typical run.

    A finished run idles in its slot until the segment ends, about half a segment on
    average, so segments are kept to ~1/32 of the median run length seen so far in the
    cell; the host round trip between segments costs about as much as one step of a
    large batch, so they are not made shorter than 16 steps.
    """

    def __init__(self, fixed):
        self.fixed = fixed
        self.length = fixed or 32
        self.seen = []

    def observe(self, steps):
        if self.fixed:
            return
        self.seen.extend(int(s) for s in steps)
        if self.seen:  # empty while only paused runs have come back
            self.length = int(np.clip(np.median(self.seen) // 32, 16, 2048))
