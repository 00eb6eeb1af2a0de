"""The basin finish: Newton's method in place of gradient descent's linear tail.

Near a strict minimum x*, gradient descent with step s shrinks the error by
rho = max |1 - s lambda| per step (lambda over the Hessian's eigenvalues at x*), so going
from |grad| = 1e-4 to 1e-12 can cost as many steps as finding the basin did. Newton's
method gets there in three or four iterations. Both reach the same point when the run is
already in a ball around x* on which the Hessian keeps its spectrum inside (0, 2/s): on
that ball GD's step map is a contraction towards x*, and x* is the only stationary point.

The test (`basin_finish`), in the spirit of Newton-Kantorovich:
  1. Newton (inexact, conjugate gradients) from the run's point x0 reaches |grad| below
     the stop tolerance at x*, and meets no negative curvature on the way;
  2. Lanczos at x* gives the extreme eigenvalues mu > 0 and Lambda of the Hessian;
  3. the Hessian's change from x* to x0 along the segment, times a safety factor
     (`SAFETY`), stays below mu / 2: on the ball of radius r = |x0 - x*| the spectrum is
     then in [mu / 2, Lambda + mu / 2], and s (Lambda + mu / 2) < 2.
The Hessian's variation in 3 is measured in one direction and scaled, not bounded, so this
is a floating-point test, not a proof (the certificates in `proofs/` are the proofs).
A run that fails it goes back to gradient descent unchanged and tries again later, closer
in. A run that passes reports the GD steps it was spared: log(|grad(x0)| / grad_tol) /
-log(rho), the linear rate's prediction.

Everything is matrix-free (the objective's Hessian-vector product), so the cost is a few
hundred gradients at any width, and it is batched over runs.
"""

from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives.data import TrainData
from ..programs import in_calls, over_runs, quick_to_compile
from .krylov import (
    conjugate_gradients,
    lanczos_tridiagonal,
    ritz_extremes,
    start_vector,
)

NEWTON_ITERATIONS = 6
LANCZOS_STEPS = 40
# How much larger than measured the Hessian's change over the ball is taken to be.
SAFETY = 4.0


class BasinFinish(NamedTuple):
    """`basin_finish` of a batch of runs, each field with leading axis B."""

    weights: jax.Array  # x* where accepted, else the input point
    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array  # Newton iterations
    hvps: jax.Array  # Hessian-vector products spent (CG and Lanczos)
    min_eig: jax.Array  # mu: Lanczos estimate of the smallest Hessian eigenvalue at x*
    max_eig: jax.Array  # Lambda
    spared: jax.Array  # GD steps the linear rate predicts from x0 to grad_tol
    accepted: jax.Array  # bool: the test passed


class _Newton(NamedTuple):
    """What Newton's method and Lanczos find for one run (`_newton`), before the test."""

    point: jax.Array  # x*
    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array
    hvps: jax.Array
    failed: jax.Array  # negative curvature met, or a non-finite loss
    alphas: jax.Array  # the Lanczos tridiagonal at x*
    betas: jax.Array
    change: jax.Array  # |(H(x0) - H(x*)) u| along the unit u from x* to x0
    loss0: jax.Array
    norm0: jax.Array  # |grad| at x0


def _newton(weights, data, grad_tol, objective) -> _Newton:
    def gradient(w):
        return objective.loss_and_grad(w, data)

    def hvp_at(w):
        return objective.hessian_operator(w, data)

    loss0, grad0 = gradient(weights)
    norm0 = jnp.linalg.norm(grad0)
    target = grad_tol / 10  # well inside the tolerance: the end point is x* itself

    def cond(carry):
        _, _, g, it, _, failed = carry
        return (jnp.linalg.norm(g) > target) & (it < NEWTON_ITERATIONS) & ~failed

    def body(carry):
        w, _, g, it, hvps, _ = carry
        norm = jnp.linalg.norm(g)
        # Inexact Newton: solve to a relative accuracy that keeps convergence quadratic.
        step, cg_steps, negative = conjugate_gradients(
            hvp_at(w), -g, norm * jnp.minimum(0.1, jnp.sqrt(norm))
        )
        f_new, g_new = gradient(w + step)
        failed = negative | ~jnp.isfinite(f_new)
        return w + step, f_new, g_new, it + 1, hvps + cg_steps, failed

    start = (weights, loss0, grad0, jnp.asarray(0), jnp.asarray(0), jnp.asarray(False))
    point, loss, grad, iterations, hvps, failed = jax.lax.while_loop(cond, body, start)

    steps = min(LANCZOS_STEPS, weights.size)
    alphas, betas = lanczos_tridiagonal(
        hvp_at(point), start_vector(weights.shape, weights.dtype), steps
    )
    distance = jnp.linalg.norm(weights - point)
    unit = (weights - point) / jnp.where(distance > 0, distance, 1.0)
    change = jnp.linalg.norm(hvp_at(weights)(unit) - hvp_at(point)(unit))
    return _Newton(point, loss, jnp.linalg.norm(grad), iterations, hvps + steps + 2, failed,
                   alphas, betas, change, loss0, norm0)  # fmt: skip


def _judge(weights, found: _Newton, step_size, grad_tol) -> BasinFinish:
    """The basin test of one run from what `_newton` found."""
    mu, top = ritz_extremes(found.alphas, found.betas)
    spread = SAFETY * found.change  # the Hessian's change over the ball, as taken
    accepted = (
        ~found.failed
        & (found.grad_norm <= grad_tol)
        & (mu > 0)
        & (spread <= mu / 2)
        & (step_size * (top + mu / 2) < 2)
    )
    rate = jnp.maximum(jnp.abs(1 - step_size * mu), jnp.abs(1 - step_size * top))
    spared = jnp.ceil(jnp.log(found.norm0 / grad_tol) / -jnp.log(jnp.clip(rate, 1e-300, 1 - 1e-16)))
    return BasinFinish(
        weights=jnp.where(accepted, found.point, weights),
        loss=jnp.where(accepted, found.loss, found.loss0),
        grad_norm=jnp.where(accepted, found.grad_norm, found.norm0),
        iterations=found.iterations,
        hvps=found.hvps,
        min_eig=mu,
        max_eig=top,
        spared=jnp.where(accepted, jnp.maximum(spared, 0), 0).astype(jnp.int64),
        accepted=accepted,
    )


# The test runs apart from the Newton program, on one device: LAPACK's batched eigvalsh
# waits on the CPU thread pool that the devices share, so it must not run on two devices
# at once (both would wait for each other).
_judged = jax.jit(jax.vmap(_judge, (0, 0, 0, None)))


def basin_finish(
    weights: jax.Array,
    data: TrainData,
    step_size: jax.Array,
    grad_tol: float,
    objective: Hashable,
) -> BasinFinish:
    """The basin finish of a batch of runs (B, *param_shape) with their GD step sizes (B,)
    on `data`; see the module docstring for the test."""
    found = jax.device_get(_newton_program(weights, data, grad_tol, objective))
    return _judged(weights, found, step_size, grad_tol)


@quick_to_compile(static_argnames=("objective",))
def _newton_program(weights, data, grad_tol, objective) -> _Newton:
    return over_runs(lambda w, data, tol: _newton(w, data, tol, objective), (weights,),
                     (data, grad_tol))  # fmt: skip


def compile_ahead(weights, data: TrainData, grad_tol: float, objective: Hashable) -> None:
    """Start compiling `basin_finish`'s program for runs like `weights` (a
    `jax.ShapeDtypeStruct` of a whole call, `programs.finish_batch`) in the background."""
    _newton_program.ahead(weights, data, grad_tol, objective)


def finish_runs(
    weights: np.ndarray,
    data: TrainData,
    step_size: np.ndarray,
    grad_tol: float,
    objective: Hashable,
) -> BasinFinish:
    """`basin_finish` of any number of runs as host arrays."""
    return BasinFinish(*in_calls(
        lambda w, s: basin_finish(w, data, s, grad_tol, objective), weights, step_size
    ))  # fmt: skip
