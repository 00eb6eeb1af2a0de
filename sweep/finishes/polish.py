"""Float64 Newton polish: finish a run that gradient descent approaches too slowly.

Near a minimum whose Hessian is ill-conditioned (wide students, n > k, have flat
directions), gradient descent shrinks the gradient by a factor close to 1 per step and
can need millions of steps to reach |grad| <= 1e-12. A few damped Newton steps from the
same point reach it at once and land on the same minimum: the step is
-(|H| + mu I)^-1 g in the eigenbasis of the Hessian H (|H| flips negative curvature, so
the step is always a descent direction and never heads for a saddle), and it is taken
only if it shrinks the gradient without raising the loss; otherwise mu grows
(Levenberg-Marquardt). If the gradient does not reach the tolerance within the iteration
budget, the run goes back to gradient descent unchanged.

`damped_newton_cg` is the same idea without a matrix, for a batch of runs: the step
solves (H + mu I) s = -g by conjugate gradients on Hessian-vector products, and a
direction of negative curvature counts as a rejected step (mu grows until H + mu I is
positive definite on the Krylov space).
"""

import functools
from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..objectives.data import TrainData
from ..programs import over_runs, quick_to_compile
from .krylov import conjugate_gradients

ITERATIONS = 30
# Conjugate-gradient steps per damped Newton step: an inexact step is enough, the damping
# does the rest, and a batch waits for its slowest run.
POLISH_CG_STEPS = 30


class Polished(NamedTuple):
    """What the polish gives each run (arrays with a leading run axis for a batch)."""

    weights: jax.Array  # the polished point; the input point where not converged
    loss: jax.Array
    grad_norm: jax.Array
    iterations: jax.Array  # damped Newton steps tried
    converged: jax.Array  # |grad| <= grad_tol
    products: jax.Array  # Hessian-vector products spent (0 for the dense polish)


def _levenberg_marquardt(weights, data, grad_tol, objective, iterations, solve) -> Polished:
    """The damped Newton loop; `solve(w, g, mu)` gives (step, Hessian products spent,
    rejected)."""

    def norm(g):
        return jnp.sqrt(jnp.sum(g * g))

    loss, grad = objective.loss_and_grad(weights, data)

    def cond(carry):
        _, _, g, _, it, _ = carry
        return (norm(g) > grad_tol) & (it < iterations) & jnp.isfinite(norm(g))

    def body(carry):
        w, f, g, mu, it, products = carry
        step, spent, rejected = solve(w, g, mu)
        f_new, g_new = objective.loss_and_grad(w + step, data)
        # Rounding makes the loss jitter by ~1e-16 near a minimum; that is not a rise.
        accept = (norm(g_new) < norm(g)) & (f_new <= f + 1e-14 * jnp.maximum(1.0, jnp.abs(f)))
        accept = accept & jnp.isfinite(f_new) & ~rejected
        return (
            jnp.where(accept, w + step, w),
            jnp.where(accept, f_new, f),
            jnp.where(accept, g_new, g),
            jnp.where(accept, mu / 10, mu * 10),
            it + 1,
            products + spent,
        )

    start = (weights, loss, grad, jnp.asarray(1e-8, weights.dtype), jnp.asarray(0), jnp.asarray(0))
    w, f, g, _, it, products = jax.lax.while_loop(cond, body, start)
    converged = norm(g) <= grad_tol
    return Polished(
        jnp.where(converged, w, weights),
        jnp.where(converged, f, loss),
        jnp.where(converged, norm(g), norm(grad)),
        it,
        converged,
        products,
    )


@functools.partial(jax.jit, static_argnames=("objective", "iterations"))
def newton_polish(
    weights: jax.Array,
    data: TrainData,
    grad_tol: float,
    objective: Hashable,
    iterations: int = ITERATIONS,
) -> Polished:
    """Polish one run's params of `objective` (a hashable objective, see `objectives/`) on
    its `data`, with a dense eigendecomposition per step. On failure the returned weights
    are the input weights, untouched."""

    def solve(w, g, mu):
        eigenvalues, vectors = jnp.linalg.eigh(objective.hessian(w, data))
        along = vectors.T @ g.reshape(-1)
        step = -(vectors @ (along / (jnp.abs(eigenvalues) + mu))).reshape(w.shape)
        return step, 0, jnp.asarray(False)

    return _levenberg_marquardt(weights, data, grad_tol, objective, iterations, solve)


def _damped_one(weights, data, grad_tol, objective, iterations):
    def solve(w, g, mu):
        hvp = objective.hessian_operator(w, data)
        return conjugate_gradients(hvp, -g, 1e-3 * jnp.sqrt(jnp.sum(g * g)), mu, POLISH_CG_STEPS)

    return _levenberg_marquardt(weights, data, grad_tol, objective, iterations, solve)


@quick_to_compile(static_argnames=("objective", "iterations"))
def damped_newton_cg(
    weights: jax.Array,
    data: TrainData,
    grad_tol: float,
    objective: Hashable,
    iterations: int = ITERATIONS,
) -> Polished:
    """`newton_polish` of a batch of runs (B, *param_shape), matrix-free: each field has
    a leading axis B; where not converged the weights are the input weights."""
    return over_runs(lambda w, data, tol: _damped_one(w, data, tol, objective, iterations),
                     (weights,), (data, grad_tol))  # fmt: skip
