"""The scheduler: continuous batching of runs over all local devices.

Runs of one cell need from hundreds to 100,000 steps, so training a cell in lockstep until
its slowest run finishes wastes most of the work. Instead a fixed-size batch of slots
trains in jitted segments (`slots.SegmentLength`); after each only the per-run stop vector
comes back to the host, finished runs retire and pending runs refill their slots. Once the
queue is empty a cell's tail stops paying for empty slots (`_regroup`): on a CPU, where a
device trains a chunk of runs after another, the survivors fill as few chunks as they can;
on GPUs and TPUs they move to batches a quarter the size. A paused run
(`StopReason.PAUSED`) gets a finish on the host (`pauses.py`): the basin finish once
its gradient is small (`finishes/basin.py`), the problem's own at a polish checkpoint
(`finishes/polish.py`); it retires if that finishes it, else resumes where it paused.
With `optimizer.precision = "mixed"` runs first train in float32 (`_float32_phase`) and
the float64 loop takes each over where it stopped. Replays run through the same loop
with a `Recorder`.

The batch axis is sharded over a 1-D mesh ("runs") of all local devices. Every run is
independent and starts from its own key (see `objectives/initializers.py`), so results do
not depend on which slot, batch or device a run trained in (on a CPU bit for bit, given a
chunk per device: `programs.chunk_runs`).
"""

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import programs
from ..config import Config
from ..outcomes import Finished, StopReason
from ..problems import Problem
from . import flow, pauses, phases, run_state, segments, step, tracing
from .run_state import RunState
from .slots import COMPACTED, SegmentLength, Slots, fewest_chunks, first_batch_size, smaller
from .starts import CellArgs, start_runs

# Runs in flight per device when the config says 0 (and the cell has 4x as many runs):
# enough to fill the vector units of a CPU core, or the SMs of a GPU.
DEFAULT_BATCH_PER_DEVICE = {"cpu": 256, "gpu": 8192, "tpu": 8192}

# Steps per segment when every step is recorded (`Recorder`): one compiled length.
TRACE_SEGMENT = 1000

# The float32 phase (`optimizer.precision = "mixed"`) ends once |grad| <= this, well above
# float32's rounding of the gradient (about 1e-6 here), and hands the run to float64.
FLOAT32_UNTIL = 1e-4
# Runs per float32 phase, in batches: each group goes through both phases before the next.
FLOAT32_GROUP = 16

# Called after every segment with the run in each slot (-1: none) and what happened at
# every step (`tracing.History`, host arrays (S, B)); see `replay.py`.
Recorder = Callable[[np.ndarray, tracing.History], None]


@dataclass
class Counters:
    """Work done, for the useful-step fraction and compile checks."""

    steps_computed: int = 0  # run-steps computed: runs x steps of every chunk that ran
    steps_useful: int = 0  # steps the finished runs actually needed
    segments: int = 0
    polish_attempts: int = 0
    polished: int = 0  # runs the Newton polish finished
    basin_attempts: int = 0
    basin_finished: int = 0  # runs the basin finish ended
    finish_cost: int = 0  # gradient steps the basin finish cost (a Hessian product: ~2)
    float32_steps: int = 0  # steps the runs took in the float32 phase
    batch_sizes: set = field(default_factory=set)  # (cell shape, slots in the batch)
    # Wall seconds per phase of the host's loop (`timed`): "starts", "training" (segments,
    # with the wait for the devices), "finishes", and "classify" and "writing" (`runner`).
    seconds: dict = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    @property
    def useful_fraction(self) -> float:
        """Steps the runs needed over steps computed, the finish's cost included."""
        return self.steps_useful / max(self.steps_computed + self.finish_cost, 1)


def train_spec(problem: Problem, stiff: bool = False) -> run_state.TrainSpec:
    """The TrainSpec of a problem's cell (its config is the cell's, its objective knows the
    cell's shapes); `stiff`: gradient flow's implicit phase."""
    config = problem.config
    return run_state.TrainSpec(
        stiff=stiff,
        objective=problem.objective,
        optimizer=config.optimizer,
        grad_tol=config.stop.grad_tol,
        loss_tol=config.stop.loss_tol,
        max_steps=config.stop.max_steps,
        polish_after=problem.first_checkpoint(),
        basin_grad=config.stop.basin_grad if problem.basin_applies() else 0.0,
    )


class Engine:
    """Trains the runs of a cell with continuous batching on all local devices."""

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.devices = list(devices or jax.local_devices())
        self.mesh = Mesh(np.array(self.devices), ("runs",))
        self.sharding = NamedSharding(self.mesh, PartitionSpec("runs"))
        size = config.engine.batch_size or DEFAULT_BATCH_PER_DEVICE.get(
            self.devices[0].platform, 256
        ) * len(self.devices)
        self.batch_size = self._round(size)
        self.counters = Counters()
        # The cell in training: its CPU training chunk (`programs.chunk_runs`; 0: none),
        # set by `first_batch`, and its runs waiting for a finish, set by `_train`.
        self.chunk = 0
        self.waiting = pauses.Waiting(basin_on=False)
        # The cell's runs train on the first device alone (`flow.implicit`), set with
        # `chunk`.
        self.one_device = False

    def _round(self, size: int) -> int:
        """Round a batch size up to a multiple of the device count."""
        count = len(self.devices)
        return max(count, -(-size // count) * count)

    def _shard(self, state: RunState) -> RunState:
        if self.one_device:  # gradient flow's implicit solver: see `flow.implicit`
            return jax.device_put(state, self.devices[0])
        return jax.device_put(state, self.sharding)

    def first_batch(self, count: int, spec: run_state.TrainSpec) -> int:
        """The cell's batch size; also sets the cell's chunk (`programs.chunk_runs`)."""
        platform = self.devices[0].platform
        self.chunk = programs.chunk_runs(spec.objective, platform)
        self.one_device = flow.implicit(spec)
        return first_batch_size(count, len(self.devices), self.batch_size, self.chunk, platform,
                                fixed=bool(self.config.engine.batch_size))  # fmt: skip

    def train(
        self, problem: Problem, runs: Iterable[int], recorder: Recorder | None = None
    ) -> Iterator[Finished]:
        """Train runs (indices) of a problem's cell; yields `Finished` batches as runs stop.

        With a `recorder`, every step of every run is recorded (segments of a fixed
        length, `TRACE_SEGMENT`); the runs and their results are the same. With
        `optimizer.precision = "mixed"` the runs go through the float32 phase first, a
        group of runs at a time (`FLOAT32_GROUP` batches), so the host holds few of them.
        """
        runs = list(runs)
        optimizer = problem.config.optimizer
        explicit_first = optimizer.flow and optimizer.solver == "auto"
        if optimizer.precision != "mixed" and not explicit_first:
            yield from self._train(problem, runs, recorder)
            return
        group = FLOAT32_GROUP * self.batch_size
        for first in range(0, len(runs), group):
            part = runs[first : first + group]
            if explicit_first:
                handed = self._explicit_flow_phase(problem, part, recorder)
            else:
                handed = self._float32_phase(problem, part, recorder)
            yield from self._train(problem, handed, recorder, stiff=explicit_first)

    def _train(self, problem, runs, recorder, stiff=False):
        """`train` in float64 for runs to start (indices) or to resume ((run, row) pairs);
        `stiff`: gradient flow's implicit phase."""
        if not runs:
            return
        spec = train_spec(problem, stiff)
        data = jax.device_put(problem.data.train)
        slots = Slots(runs, self.first_batch(len(runs), spec), len(self.devices))
        state = self._shard(
            run_state.empty_state(spec, len(slots.run), spec.objective.param_shape(), data=data)
        )
        segment = self.segment_length(recorder)
        previous_loss = {}  # run -> its loss at its last checkpoint, for the plateau test
        self.waiting = waiting = pauses.Waiting(basin_on=bool(spec.basin_grad))
        if waiting.basin_on:
            problem.compile_finishes_ahead()
        while True:
            state, seen, stopped = self._advance(state, slots, problem, spec, data, segment,
                                                 recorder)  # fmt: skip
            if stopped is None:  # no run in the batch
                if not waiting:
                    return
                yield from self._finish_waiting(slots, problem)
                continue
            stopped = waiting.park(state, seen, stopped, slots)
            if waiting.fills_a_call():
                for out in self._finish_waiting(slots, problem, whole_calls=True):
                    segment.observe(out.steps)
                    yield out
            if not stopped.size:
                continue
            state, out = self._retire(state, stopped, slots, problem, previous_loss)
            self.counters.steps_useful += int(out.steps.sum())
            segment.observe(out.steps)
            if out.runs.size:
                yield out

    def _float32_phase(self, problem, runs, recorder) -> list:
        """Train runs in float32 until |grad| <= FLOAT32_UNTIL, their loss test, their
        first checkpoint or max_steps: nothing is decided here. Returns (run, float64 host
        row) pairs for the float64 engine to resume, exactly where each stopped."""
        float64_spec = train_spec(problem)
        # Handed over before any stop or pause the float64 engine could make (the loss
        # test may fire early on float32's rounding: float64 then goes on).
        until = max(FLOAT32_UNTIL, float64_spec.grad_tol, float64_spec.basin_grad)
        spec = dataclasses.replace(float64_spec, grad_tol=0.0, basin_grad=until)
        exact = jax.device_put(problem.data.train)  # for the runs' start (NTK step sizes)

        def hand(left):
            self.counters.float32_steps += sum(int(row.steps) for _, row in left)
            return [(run, phases.in_float64(row, float64_spec.basin_grad)) for run, row in left]

        data = jax.device_put(phases.in_float32(exact))
        return self._first_phase(problem, runs, recorder, spec, data, hand, jnp.float32, exact)

    def _explicit_flow_phase(self, problem, runs, recorder) -> list:
        """Gradient flow with solver = "auto": integrate with the explicit solver until
        |grad| <= optimizer.stiff_below (or any stop or pause), then hand each run to
        the implicit solver (`flow.hand_over`) as (run, host row) pairs, exactly where
        it stopped; nothing is decided here."""
        stiff_spec = train_spec(problem, stiff=True)
        until = max(problem.config.optimizer.stiff_below, stiff_spec.grad_tol,
                    stiff_spec.basin_grad)  # fmt: skip
        spec = dataclasses.replace(stiff_spec, stiff=False, grad_tol=0.0, basin_grad=until)
        data = jax.device_put(problem.data.train)

        def hand(left):
            rows = jax.tree.map(lambda *x: np.stack(x), *[row for _, row in left])
            rows = flow.hand_over(stiff_spec, rows, data, stiff_spec.basin_grad)
            return [(run, jax.tree.map(lambda x, i=i: x[i], rows))
                    for i, (run, _) in enumerate(left)]  # fmt: skip

        return self._first_phase(problem, runs, recorder, spec, data, hand)

    def _first_phase(self, problem, runs, recorder, spec, data, hand, dtype=jnp.float64,
                     start_data=None) -> list:  # fmt: skip
        """Train runs with `spec` until each stops or pauses, deciding nothing; `hand`
        turns the (run, host row) pairs that left into those the next phase resumes.
        Returns them all."""
        slots = Slots(runs, self.first_batch(len(runs), spec), len(self.devices))
        shape = spec.objective.param_shape()
        state = self._shard(run_state.empty_state(spec, len(slots.run), shape, dtype, data))
        segment = self.segment_length(recorder)
        handed = []
        while True:
            state, _, stopped = self._advance(state, slots, problem, spec, data, segment,
                                              recorder, start_data)  # fmt: skip
            if stopped is None:
                return handed
            if not stopped.size:
                continue
            left = pauses.leave(state, stopped, slots)
            handed += hand(left)
            segment.observe(np.array([row.steps for _, row in left]))

    def segment_length(self, recorder) -> SegmentLength:
        """The cell's segment length (after `first_batch`, which sets its chunk); a
        `recorder` gets segments of TRACE_SEGMENT steps."""
        fixed = TRACE_SEGMENT if recorder else self.config.engine.segment_steps
        return SegmentLength(fixed) if self.chunk else SegmentLength(fixed, *COMPACTED)

    def _advance(self, state, slots, problem, spec, data, segment, recorder, start_data=None):
        """Fill the free slots from the queue, compact the tail, and train one segment.
        Returns the new state, what the host read of it (`pauses.Seen`) and the slots
        whose run stopped (None, None: no run to train)."""
        fresh, run_index, back = slots.refill()
        if fresh.any():
            start_data = data if start_data is None else start_data
            with self.counters.timed("starts"):
                state = start_runs(state, fresh, run_index, CellArgs.of(problem), start_data, spec)
        if back:
            with self.counters.timed("starts"):
                state = self._place(state, back)
        active = np.flatnonzero(slots.run >= 0)
        if not active.size:
            return state, None, None
        if not slots.queue:
            state = self._regroup(state, slots, active.size)
        updates = max(1, segment.length // step.steps_per_update(spec, data))
        with self.counters.timed("training"):
            state, seen = self._segment(state, data, spec, updates, recorder, slots)
        if not segment.seen:  # (`_regroup` may have moved the runs: their slots now)
            segment.survived(seen.steps[slots.run >= 0])
        self.counters.batch_sizes.add((problem.cell.shape, len(slots.run)))
        stopped = np.flatnonzero(seen.reason != run_state.RUNNING)
        return state, seen, stopped[slots.run[stopped] >= 0]

    def _segment(self, state, data, spec, updates, recorder, slots):
        """One segment of `updates` updates: the new state, and what the host reads of it
        (`pauses.Seen`)."""
        if recorder is None:
            state, taken = segments.train_segment(state, data, spec, updates, self.mesh)
        else:
            state, taken, history = tracing.trace_segment(state, data, spec, updates, self.mesh)
            recorder(slots.run.copy(), jax.tree.map(np.asarray, history))
        seen = pauses.seen(state, taken)
        self.counters.segments += 1
        self.counters.steps_computed += int(np.sum(seen.taken))
        return state, seen

    def _finish_waiting(self, slots, problem, whole_calls=False) -> list[Finished]:
        """The finishes of the runs waiting for them (`pauses.Waiting.finish`), counted."""
        with self.counters.timed("finishes"):
            found = self.waiting.finish(slots, problem, self.counters, whole_calls)
        for out in found:
            self.counters.steps_useful += int(out.steps.sum())
        return found

    def _place(self, state, back):
        """Resumed runs back into their new slots, exactly as they left."""
        slots = np.array([slot for slot, _ in back])
        rows = jax.tree.map(lambda *x: np.stack(x), *[row for _, row in back])

        def scatter(batch, values):
            batch = np.zeros(batch.shape, batch.dtype)
            batch[slots] = values
            return batch

        mask = np.isin(np.arange(state.steps.shape[0]), slots)
        return run_state.place_runs(state, mask, jax.tree.map(scatter, state, rows))

    def _retire(self, state, stopped, slots, problem, previous_loss):
        """Settle the stopped slots' runs: finished ones leave their slots, paused ones that
        the finish did not end resume. Returns the new state and the finished runs."""
        fields = (state.weights, state.steps, state.loss, state.grad_norm, state.step_size,
                  state.watched, state.reason)  # fmt: skip
        weights, steps, loss, grad_norm, step_size, watched, reason = (
            np.asarray(x)[stopped] for x in jax.device_get(fields)
        )
        out = Finished(
            runs=slots.run[stopped].copy(),
            weights=weights,
            steps=steps.astype(np.int64),
            newton_steps=np.zeros(stopped.size, np.int64),
            step_size=step_size,
            loss=loss,
            grad_norm=grad_norm,
            reason=reason.copy(),
            watched=watched,
            trained_loss=np.full(stopped.size, np.nan),
            predicted_steps=np.where(reason == StopReason.GRAD, steps, -1).astype(np.int64),
            flow=flow.statistics(state.opt_state, stopped),
        )
        with self.counters.timed("finishes"):
            pauses.settle(out, problem, previous_loss, self.counters)
        done = out.reason != StopReason.PAUSED
        if not done.all():  # the finish did not end them: back to gradient descent
            state = phases.resume_runs(state, np.isin(np.arange(len(slots.run)), stopped[~done]))
        slots.run[stopped[done]] = -1
        return state, out.select(done)

    def _regroup(self, state: RunState, slots: Slots, count: int) -> RunState:
        """The tail of a cell (no run queued): on a CPU, gather the runs into as few chunks
        as they fill (a chunk without runs costs nothing); elsewhere, into a batch a
        quarter the size or smaller (`slots.smaller`), compiled once per cell shape."""
        devices, batch = len(self.devices), len(slots.run)
        if self.chunk:
            size = batch
            chunk = programs.chunk_size(batch // devices, self.chunk)
            if slots.chunks_in_use(chunk) <= fewest_chunks(count, devices, chunk):
                return state
        else:
            size = smaller(batch, count, devices)
            if size == batch:
                return state
        index = slots.regroup(size)
        # Through the host: the state is small, and a gather on the devices would cost a
        # compile per pair of sizes.
        host = jax.device_get(state)
        return self._shard(jax.tree.map(lambda x: np.asarray(x)[index], host))
