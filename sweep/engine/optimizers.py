"""The optimizers (optax) and step-size schedules a run can use."""

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax

from ..config import OptimizerSettings

if TYPE_CHECKING:
    from .run_state import TrainSpec

_OPTIMIZERS = {
    "gd": lambda spec, rate: optax.sgd(rate),
    "momentum": lambda spec, rate: optax.sgd(rate, momentum=spec.momentum),
    "adam": lambda spec, rate: optax.adam(rate, b1=spec.b1, b2=spec.b2),
}


def make_optimizer(
    spec: OptimizerSettings, step_size: float | jax.Array
) -> optax.GradientTransformation:
    """The optax transformation for an Optimizer config and a (possibly traced) step size."""
    return _OPTIMIZERS[spec.kind](spec, step_size)


def schedule(spec: "TrainSpec", steps: jax.Array) -> jax.Array:
    """Step-size factor after `steps` updates (a traced int)."""
    t = steps.astype(jnp.float64)
    if spec.optimizer.schedule == "cosine":  # from 1 down to 0 at max_steps
        return 0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(t / spec.max_steps, 1.0)))
    if spec.optimizer.schedule == "inverse_time":
        return 1.0 / (1.0 + t / spec.optimizer.decay_steps)
    return jnp.ones_like(t)
