"""Replay one run of a sweep from its key, recording its whole trajectory."""

import functools

import jax
import numpy as np
import pandas as pd

from . import landscape, polish, train
from .analysis import classify
from .engine import start_runs
from .landscape import gaussian


@functools.partial(jax.jit, static_argnames=("spec", "steps"))
def _traced_segment(state, teacher, spec, steps):
    """Like `train.train_segment`, but also returns loss and gradient norm at every step."""

    def body(carry, _):
        carry = train.train_step(carry, teacher, spec)
        return carry, (carry.loss[0], carry.grad_norm[0], carry.reason[0])

    return jax.lax.scan(body, state, None, length=steps)


def _polish(state, teacher, spec, surface):
    """The Newton polish of the run in slot 0: (weights, loss, grad_norm, iterations) or None."""
    weights, loss, grad_norm, iterations, converged = polish.newton_polish(
        state.weights[0], teacher, spec.grad_tol, surface
    )
    if not bool(converged):
        return None
    return np.asarray(weights), float(loss), float(grad_norm), int(iterations)


def replay(config, cell, run, chunk=1000):
    """Train run `run` of `cell` alone, recording every step.

    Returns:
      (history, final): a DataFrame with step, loss and grad_norm at every evaluated point,
      and a dict with the final weights, steps, loss, grad_norm, stop reason, status and
      smallest Hessian eigenvalue.
    """
    surface = landscape.for_problem(config.problem)
    spec = train.TrainSpec(
        config.optimizer,
        config.stop.grad_tol,
        config.stop.loss_tol,
        config.stop.max_steps,
        config.stop.polish_after,
        landscape=surface,
    )
    teacher = gaussian.orthonormal_teacher(cell.k, cell.d)
    state = start_runs(
        train.empty_state(spec, 1, cell.n, cell.d),
        np.ones(1, bool),
        np.array([run]),
        config.seed,
        cell.k,
        cell.init_scale,
        cell.step_size,
        spec,
    )
    losses, norms = [], []
    polished = None  # (weights, loss, grad_norm, iterations) once the Newton polish finishes
    while int(state.reason[0]) in (train.RUNNING, train.PAUSED):
        if int(state.reason[0]) == train.PAUSED:  # as the engine does: polish, or go on
            polished = _polish(state, teacher, spec, surface)
            if polished:
                break
            state = train.resume_runs(state, np.ones(1, bool))
        state, (loss, grad_norm, reason) = _traced_segment(state, teacher, spec, chunk)
        evaluated = np.flatnonzero(np.asarray(reason) == train.RUNNING).size + 1
        losses.append(np.asarray(loss)[:evaluated])
        norms.append(np.asarray(grad_norm)[:evaluated])
    reason = np.asarray(state.reason).copy()
    if reason[0] == train.MAX_STEPS and spec.polish_after:
        polished = _polish(state, teacher, spec, surface)
    if polished:
        reason[0] = train.NEWTON
        final_weights, final_loss, final_norm, newton_steps = polished
    else:
        final_weights, newton_steps = np.asarray(state.weights[0]), 0
        final_loss, final_norm = float(state.loss[0]), float(state.grad_norm[0])
    loss, grad_norm = np.concatenate(losses), np.concatenate(norms)
    history = pd.DataFrame({"step": np.arange(len(loss)), "loss": loss, "grad_norm": grad_norm})
    found = classify(
        final_weights[None], reason, np.array([final_loss]), cell.k, config.classify, surface
    )
    final = {
        "weights": final_weights,
        "steps": int(state.steps[0]),
        "newton_steps": int(newton_steps),
        "loss": final_loss,
        "grad_norm": final_norm,
        "stop_reason": train.REASON_NAMES[int(reason[0])],
        "status": found["status"][0],
        "min_eig": float(found["min_eig"][0]),
    }
    return history, final
