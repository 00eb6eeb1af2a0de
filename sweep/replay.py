"""Replay one run of a sweep from its key, recording its whole trajectory."""

import functools

import jax
import numpy as np
import pandas as pd

from . import datasets, train
from .analysis import classify, empirical
from .engine import Finished, settle, start_runs, train_spec


@functools.partial(jax.jit, static_argnames=("spec", "steps"))
def _traced_segment(state, teacher, spec, steps):
    """Like `train.train_segment`, but also returns loss and gradient norm at every step."""

    def body(carry, _):
        carry = train.train_step(carry, teacher, spec)
        return carry, (carry.loss[0], carry.grad_norm[0], carry.reason[0])

    return jax.lax.scan(body, state, None, length=steps)


def _settle(state, run, teacher, spec, plateau_tol, previous_loss):
    """`engine.settle` for the run in slot 0; returns its one-run `Finished`."""
    out = Finished(
        runs=np.array([run]),
        weights=np.asarray(state.weights)[:1].copy(),
        steps=np.asarray(state.steps)[:1].astype(np.int64),
        newton_steps=np.zeros(1, np.int64),
        step_size=np.asarray(state.step_size)[:1],
        loss=np.asarray(state.loss)[:1].copy(),
        grad_norm=np.asarray(state.grad_norm)[:1].copy(),
        reason=np.asarray(state.reason)[:1].copy(),
        watched=np.asarray(state.watched)[:1].copy(),
    )
    settle(out, teacher, spec, plateau_tol, previous_loss)
    return out


def replay(config, cell, run, chunk=1000):
    """Train run `run` of `cell` alone, recording every step.

    Returns:
      (history, final): a DataFrame with step, loss and grad_norm at every evaluated point,
      and a dict with the final weights, steps, loss, grad_norm, stop reason, status and
      smallest Hessian eigenvalue.
    """
    spec = train_spec(config, cell)
    surface = spec.landscape
    data = datasets.make(config.problem, cell, config.seed)
    teacher = data.train
    state = start_runs(
        train.empty_state(spec, 1, surface.param_shape()),
        np.ones(1, bool),
        np.array([run]),
        config.seed,
        cell.k,
        cell.init_scale,
        cell.step_size,
        teacher,
        spec,
    )
    losses, norms = [], []
    previous_loss = {}
    plateau_tol = config.stop.plateau_tol
    while True:
        reason = int(state.reason[0])
        if reason == train.PAUSED:  # as the engine does: polish or plateau, else go on
            settled = _settle(state, run, teacher, spec, plateau_tol, previous_loss)
            if settled.reason[0] != train.PAUSED:
                break
            state = train.resume_runs(state, np.ones(1, bool))
        elif reason != train.RUNNING:
            settled = _settle(state, run, teacher, spec, plateau_tol, previous_loss)
            break
        state, (loss, grad_norm, reasons) = _traced_segment(state, teacher, spec, chunk)
        evaluated = np.flatnonzero(np.asarray(reasons) == train.RUNNING).size + 1
        losses.append(np.asarray(loss)[:evaluated])
        norms.append(np.asarray(grad_norm)[:evaluated])
    final_weights, final_loss = settled.weights[0], float(settled.loss[0])
    final_norm, newton_steps = float(settled.grad_norm[0]), int(settled.newton_steps[0])
    reason = settled.reason
    loss, grad_norm = np.concatenate(losses), np.concatenate(norms)
    step = np.arange(len(loss)) * train.steps_per_update(spec, teacher)
    history = pd.DataFrame({"step": step, "loss": loss, "grad_norm": grad_norm})
    if config.problem.kind == "gaussian_relu":
        found = classify(
            final_weights[None], reason, np.array([final_loss]), cell.k, config.classify, surface
        )
    else:
        found = empirical.classify(
            config,
            cell,
            data,
            [run],
            final_weights[None],
            reason,
            np.array([final_loss]),
            settled.watched,
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
