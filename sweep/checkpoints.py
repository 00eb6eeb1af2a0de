"""What a run that paused or stopped gets on the host, between training segments.

- `in_basin`: runs paused at |grad| <= stop.basin_grad get the basin finish
  (`basin.py`), in batches; those it does not take resume, to pause again closer in.
- `settle`: runs at a checkpoint (stop.polish_after and its doublings) or at max_steps
  get the problem's finish (the Newton polish; on data the exact finish onto a kink), and
  failing that the plateau test.
"""

import jax
import numpy as np

from . import basin, train
from .outcomes import Finished, StopReason
from .problems import Problem


def in_basin(
    state: train.RunState, stopped: np.ndarray, slot_run: np.ndarray, problem: Problem, counters
) -> tuple[train.RunState, np.ndarray, Finished | None]:
    """The basin finish (`basin.py`) of the stopped slots paused for it, once there
    are `basin.CHUNK` of them or no run is left training (until then they wait,
    frozen). Returns the state, the other stopped slots, and the finished runs (or
    None); runs the finish did not take resume."""
    if not stopped.size:
        return state, stopped, None
    fields = (state.reason, state.grad_norm, state.finish_below, state.steps, state.pause_at)
    reason, grad_norm, below, steps, pause_at = (np.asarray(x) for x in jax.device_get(fields))
    waiting = stopped[
        (reason[stopped] == train.PAUSED)
        & (grad_norm[stopped] <= below[stopped])
        & (steps[stopped] < pause_at[stopped])
    ]
    others = np.setdiff1d(stopped, waiting)
    if not waiting.size or (waiting.size < basin.CHUNK and np.any(reason == train.RUNNING)):
        return state, others, None
    host = jax.device_get((state.weights, state.step_size, state.loss, state.watched))
    weights, step_size, loss, watched = (np.asarray(x)[waiting] for x in host)
    found = problem.basin_finish(weights, step_size)
    counters.basin_attempts += waiting.size
    counters.finish_cost += int(2 * found.hvps.sum() + found.iterations.sum())
    taken = found.accepted
    if not taken.all():
        state = train.resume_runs(state, np.isin(np.arange(len(slot_run)), waiting[~taken]))
    if not taken.any():
        return state, others, None
    counters.basin_finished += int(taken.sum())
    done = waiting[taken]
    out = Finished(
        runs=slot_run[done].copy(),
        weights=found.weights[taken],
        steps=steps[done].astype(np.int64),
        newton_steps=found.iterations[taken].astype(np.int64),
        step_size=step_size[taken],
        loss=found.loss[taken],
        grad_norm=found.grad_norm[taken],
        reason=np.full(done.size, StopReason.BASIN, np.int8),
        watched=watched[taken],
        trained_loss=loss[taken],
        predicted_steps=steps[done] + found.spared[taken],
    )
    return state, others, out


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
