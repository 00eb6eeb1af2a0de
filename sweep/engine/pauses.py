"""What a run that paused or stopped gets on the host, between training segments.

- `seen`: what the host reads of the batch after a segment, in one transfer.
- `Waiting`: runs that wait, out of their slots, for a finish that runs in whole calls.
- `finish_in_basin`: runs paused at |grad| <= stop.basin_grad (`in_basin`) get the basin
  finish (`finishes/basin.py`), in batches; those it does not take resume, to pause again closer in,
  or, when they converge too slowly, wait for the Newton polish (`polish_runs`).
- `settle`: runs at a checkpoint (stop.polish_after and its doublings) or at max_steps
  get the problem's finish (the Newton polish; on data the exact finish onto a kink), and
  failing that the plateau test.
"""

from typing import NamedTuple

import jax
import numpy as np

from .. import programs
from ..outcomes import Finished, StopReason
from ..problems import Problem
from . import flow, phases, run_state
from .slots import Slots

# A Hessian whose smallest eigenvalue times the step is below this is taken as singular:
# GD would need more than ~1e6 steps per e-fold there.
SINGULAR = 1e-6


class Seen(NamedTuple):
    """What the host reads of a batch after each segment, in one transfer (`seen`): host
    arrays (B,), enough to tell which runs stopped and which of them paused for the basin
    finish."""

    reason: np.ndarray
    steps: np.ndarray
    grad_norm: np.ndarray
    finish_below: np.ndarray
    pause_at: np.ndarray
    taken: np.ndarray  # run-steps computed on each device (`train_segment`), (devices,)


def seen(state: run_state.RunState, taken: jax.Array) -> Seen:
    """`Seen` of a batch after a segment: one wait for the devices, one transfer."""
    return Seen(*jax.device_get((state.reason, state.steps, state.grad_norm,
                                 state.finish_below, state.pause_at, taken)))  # fmt: skip


def in_basin(seen: Seen, stopped: np.ndarray) -> np.ndarray:
    """Which of the stopped slots paused for the basin finish (not at a checkpoint), from
    what the host read of the batch after the segment."""
    return stopped[
        (seen.reason[stopped] == run_state.PAUSED)
        & (seen.grad_norm[stopped] <= seen.finish_below[stopped])
        & (seen.steps[stopped] < seen.pause_at[stopped])
    ]


class Waiting:
    """The runs of the cell in training that wait on the host for a finish that runs in
    whole calls (a call of a finish program costs the same however few runs it holds):
    runs paused for the basin finish (`park`), and runs the basin finish passed on to the
    Newton polish. Their slots train other runs meanwhile."""

    def __init__(self, basin_on: bool):
        self.basin_on = basin_on  # whether the cell's runs pause for the basin finish
        self.parked = []  # (run, host row) waiting for the basin finish
        self.to_polish = []  # (run, host row) the basin finish passed on to the polish
        self.seen = {}  # run -> (steps, |grad|) at its last basin pause

    def __bool__(self) -> bool:
        return bool(self.parked or self.to_polish)

    def fills_a_call(self) -> bool:
        return len(self.parked) >= programs.finish_batch()

    def park(
        self, state: run_state.RunState, seen: Seen, stopped: np.ndarray, slots: Slots
    ) -> np.ndarray:
        """Runs paused for the basin finish leave their slots to wait here. Returns the
        other stopped slots."""
        if not stopped.size or not self.basin_on:
            return stopped
        waiting = in_basin(seen, stopped)
        if waiting.size:
            self.parked.extend(leave(state, waiting, slots))
        return np.setdiff1d(stopped, waiting)

    def finish(
        self, slots: Slots, problem: Problem, counters, whole_calls: bool = False
    ) -> list[Finished]:
        """The basin finish of the parked runs, then the Newton polish of those it passed
        on (`finish_in_basin`, `polish_runs`). With `whole_calls`, each takes only as many
        runs as fill whole calls of its program: the rest wait for the next. Runs neither
        finish takes go to the front of the queue, to resume where they left. Returns the
        finished runs."""
        found, size = [], programs.finish_batch()

        def take(count):
            return count // size * size if whole_calls else count

        rows, runs = _take(self.parked, take(len(self.parked)))
        if runs.size:
            out, slow, back = finish_in_basin(rows, runs, problem, counters, self.seen)
            _resume(rows, runs, back, slots)
            self.to_polish += _pairs(runs[slow], jax.tree.map(lambda x: x[slow], rows))
            found.append(out)
        rows, runs = _take(self.to_polish, take(len(self.to_polish)))
        if runs.size:
            out, back = polish_runs(rows, runs, problem, counters, self.seen)
            _resume(rows, runs, back, slots)
            found.append(out)
        return [out for out in found if out is not None]


def leave(
    state: run_state.RunState, leaving: np.ndarray, slots: Slots
) -> list[tuple[int, run_state.RunState]]:
    """(run, host row) of the runs in slots `leaving`, which are freed."""
    rows = jax.tree.map(lambda x: np.asarray(x)[leaving], jax.device_get(state))
    out = _pairs(slots.run[leaving], rows)
    slots.run[leaving] = -1
    return out


def _pairs(runs: np.ndarray, rows: run_state.RunState) -> list[tuple[int, run_state.RunState]]:
    """(run, host row) pairs of stacked host rows."""
    return [(int(run), jax.tree.map(lambda x, i=i: x[i], rows)) for i, run in enumerate(runs)]


def _take(waiting: list, count: int) -> tuple[run_state.RunState | None, np.ndarray]:
    """The first `count` (run, host row) pairs of `waiting`, removed from it: the rows
    stacked, and the runs."""
    taken = waiting[:count]
    del waiting[:count]
    if not taken:
        return None, np.zeros(0, int)
    return jax.tree.map(lambda *x: np.stack(x), *[row for _, row in taken]), np.array(
        [run for run, _ in taken]
    )


def _resume(rows, runs, back, slots) -> None:
    """Runs `back` (a mask) of host rows to the front of the queue, as they left."""
    again = phases.resumed(jax.tree.map(lambda x: x[back], rows))
    slots.queue.extendleft(reversed(_pairs(runs[back], again)))


def finish_in_basin(
    rows: run_state.RunState, runs: np.ndarray, problem: Problem, counters, seen: dict
) -> tuple[Finished | None, np.ndarray, np.ndarray]:
    """The basin finish (`finishes/basin.py`) of runs paused for it, as host rows (leading axis m).

    A run the basin test does not take is due for the matrix-free Newton polish
    (`polish_runs`) at once when its own convergence since its previous pause (`seen`:
    run -> (steps, |grad|), updated here) predicts more steps to stop.grad_tol than it has
    taken so far, or when the Hessian is singular where Newton got to: near a minimum that
    is not strict (wide students) gradient descent slows to a crawl, and waiting for the
    fixed checkpoint is idle work (stop.polish_after = 0: no polish at all). Returns the
    finished runs (or None), a mask of the runs due for the polish and a mask of the runs
    neither takes, which go back to gradient descent.
    """
    weights, step_size, steps, grad_norm = rows.weights, rows.step_size, rows.steps, rows.grad_norm
    found = problem.basin_finish(weights, step_size)
    counters.basin_attempts += len(runs)
    counters.finish_cost += int(2 * found.hvps.sum() + found.iterations.sum())
    done = found.accepted
    counters.basin_finished += int(done.sum())
    # Slow: the rate measured since the previous pause says so, or the Hessian where
    # Newton got to is singular (its smallest eigenvalue x step below SINGULAR: a minimum
    # that is not strict, which GD approaches sublinearly).
    singular = found.min_eig * step_size < SINGULAR
    slow = _slow(runs, steps, grad_norm, seen, problem.config.stop.grad_tol) | singular
    slow &= ~done & bool(problem.config.stop.polish_after)
    back = ~done & ~slow
    _remember(seen, runs[back], steps[back], grad_norm[back])
    out = _moved(rows, runs, done, StopReason.BASIN, found.weights, found.loss,
                 found.grad_norm, found.iterations, steps + found.spared)  # fmt: skip
    return out, slow, back


def polish_runs(
    rows: run_state.RunState, runs: np.ndarray, problem: Problem, counters, seen: dict
) -> tuple[Finished | None, np.ndarray]:
    """The matrix-free Newton polish (`Problem.polish_runs`) of runs `finish_in_basin`
    found due for it, as host rows (leading axis m), in as few whole calls as they fill:
    what a run gets does not depend on the others in its call. Returns the runs it
    finished (or None) and a mask of those it did not, which go back to gradient descent
    (and are remembered in `seen`)."""
    found = problem.polish_runs(rows.weights)
    counters.finish_cost += int(2 * found.products.sum() + found.iterations.sum())
    counters.polish_attempts += len(runs)
    counters.polished += int(found.converged.sum())
    back = ~found.converged
    _remember(seen, runs[back], rows.steps[back], rows.grad_norm[back])
    unknown = np.full(len(runs), -1, np.int64)
    return _moved(rows, runs, found.converged, StopReason.NEWTON, found.weights, found.loss,
                  found.grad_norm, found.iterations, unknown), back  # fmt: skip


def _moved(rows, runs, keep, reason, weights, loss, grad_norm, iterations, predicted_steps):
    """The runs `keep` (a mask) of host rows that a finish moved to `weights` in
    `iterations` Newton iterations, as `Finished` (None if none)."""
    if not keep.any():
        return None
    return Finished(
        runs=runs.copy(),
        weights=weights,
        steps=rows.steps.astype(np.int64),
        newton_steps=iterations.astype(np.int64),
        step_size=rows.step_size,
        loss=loss,
        grad_norm=grad_norm,
        reason=np.full(len(runs), reason, np.int8),
        watched=rows.watched,
        trained_loss=rows.loss,
        predicted_steps=predicted_steps,
        flow=flow.statistics(rows.opt_state, np.arange(len(runs))),
    ).select(keep)


def _slow(runs, steps, grad_norm, seen, grad_tol) -> np.ndarray:
    """Whether each run's gradient, shrinking at the rate measured since its previous
    pause, needs more further steps to reach grad_tol than the run has taken so far."""
    slow = np.zeros(len(runs), bool)
    for i, (run, step, norm) in enumerate(zip(runs, steps, grad_norm, strict=True)):
        if int(run) not in seen:
            continue
        step_before, norm_before = seen[int(run)]
        rate = np.log(norm_before / norm) / max(int(step) - step_before, 1)  # per step
        slow[i] = rate <= 0 or np.log(norm / grad_tol) / rate > step
    return slow


def _remember(seen: dict, runs, steps, grad_norm) -> None:
    """Note where runs that go back to gradient descent paused (for `_slow`)."""
    for run, step, norm in zip(runs, steps, grad_norm, strict=True):
        seen[int(run)] = (int(step), float(norm))


def settle(out: Finished, problem: Problem, previous_loss: dict, counters=None) -> None:
    """Decide the runs of `out` that reached a checkpoint (PAUSED, or MAX_STEPS), in place.

    The problem's finish (the float64 Newton polish, if stop.polish_after; on data also
    the exact finish onto a kink, and at max_steps) that succeeds ends a run (NEWTON or
    KINK). Failing that, a run whose loss fell by at most
    stop.plateau_tol (relative) since its previous checkpoint stops on a plateau
    (PLATEAU): the minima of an empirical ReLU loss often sit on a kink, where no point
    has a small gradient. On data a run that stops (max_steps, plateau) gets the final
    finish, which for SGD starts from where it stopped. `previous_loss` maps run -> loss
    at its last checkpoint and is updated here. Others are left as they are.
    """
    stop = problem.config.stop
    checkpoints = (StopReason.PAUSED, StopReason.MAX_STEPS)
    for i in np.flatnonzero(np.isin(out.reason, checkpoints)):
        # Problems on data also finish a run that ran out of steps (SGD never settles).
        last = out.reason[i] == StopReason.MAX_STEPS and problem.finishes_at_max_steps
        if (stop.polish_after or last) and _finish(out, i, problem, last, counters):
            continue
        if stop.plateau_tol:
            run, loss = int(out.runs[i]), float(out.loss[i])
            before = previous_loss.get(run)
            if before is not None and before - loss <= stop.plateau_tol * abs(before):
                out.reason[i] = StopReason.PLATEAU
                # A run that stops here gets the problem's final finish (SGD's: from
                # where it stopped, `DataSet.finish`).
                if problem.finishes_at_max_steps:
                    _finish(out, i, problem, True, counters)
            previous_loss[run] = loss


def _finish(out: Finished, i: int, problem: Problem, final: bool, counters) -> bool:
    """Try the problem's finish on run slot i; on success move the run there."""
    finish = problem.finish(out.weights[i], float(out.step_size[i]), final)
    if counters is not None:
        counters.polish_attempts += 1
    if not finish.converged:
        return False
    out.trained_loss[i] = out.loss[i]
    out.weights[i] = finish.weights
    out.loss[i], out.grad_norm[i] = finish.loss, finish.grad_norm
    out.newton_steps[i] = finish.iterations
    out.reason[i] = finish.reason
    if counters is not None:
        counters.polished += 1
    return True
