"""Replay one run of a sweep from its key, recording its whole trajectory."""

import functools

import jax
import numpy as np
import pandas as pd

from . import train
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


def replay(config, cell, run, chunk=1000):
    """Train run `run` of `cell` alone, recording every step.

    Returns:
      (history, final): a DataFrame with step, loss and grad_norm at every evaluated point,
      and a dict with the final weights, steps, loss, grad_norm, stop reason, status and
      smallest Hessian eigenvalue.
    """
    spec = train.TrainSpec(
        config.optimizer, config.stop.grad_tol, config.stop.loss_tol, config.stop.max_steps
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
    while int(state.reason[0]) == train.RUNNING:
        state, (loss, grad_norm, reason) = _traced_segment(state, teacher, spec, chunk)
        evaluated = np.flatnonzero(np.asarray(reason) == train.RUNNING).size + 1
        losses.append(np.asarray(loss)[:evaluated])
        norms.append(np.asarray(grad_norm)[:evaluated])
    loss, grad_norm = np.concatenate(losses), np.concatenate(norms)
    history = pd.DataFrame({"step": np.arange(len(loss)), "loss": loss, "grad_norm": grad_norm})
    weights = np.asarray(state.weights)
    reason = np.asarray(state.reason)
    found = classify(weights, reason, np.asarray(state.loss), cell.k, config.classify)
    final = {
        "weights": weights[0],
        "steps": int(state.steps[0]),
        "loss": float(state.loss[0]),
        "grad_norm": float(state.grad_norm[0]),
        "stop_reason": train.REASON_NAMES[int(reason[0])],
        "status": found["status"][0],
        "min_eig": float(found["min_eig"][0]),
    }
    return history, final
