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

import jax
import jax.numpy as jnp

from .datasets import TrainData
from .krylov import conjugate_gradients, hessian_vector_product, quick_to_compile

ITERATIONS = 30


@functools.partial(jax.jit, static_argnames=("objective", "iterations"))
def newton_polish(
    weights: jax.Array,
    data: TrainData,
    grad_tol: float,
    objective: Hashable,
    iterations: int = ITERATIONS,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Polish one run's params of `objective` (a hashable objective, see `landscape/`) on
    its `data`. Returns (weights, loss, grad_norm, iterations, converged).

    On failure the returned weights are the input weights, untouched.
    """
    shape = weights.shape
    loss, grad = objective.loss_and_grad(weights, data)

    def norm(g):
        return jnp.sqrt(jnp.sum(g * g))

    def cond(carry):
        _, _, g, _, it = carry
        return (norm(g) > grad_tol) & (it < iterations) & jnp.isfinite(norm(g))

    def body(carry):
        w, f, g, mu, it = carry
        eigenvalues, vectors = jnp.linalg.eigh(objective.hessian(w, data))
        along = vectors.T @ g.reshape(-1)
        step = -(vectors @ (along / (jnp.abs(eigenvalues) + mu))).reshape(shape)
        f_new, g_new = objective.loss_and_grad(w + step, data)
        # Rounding makes the loss jitter by ~1e-16 near a minimum; that is not a rise.
        accept = (norm(g_new) < norm(g)) & (f_new <= f + 1e-14 * jnp.maximum(1.0, jnp.abs(f)))
        accept = accept & jnp.isfinite(f_new)
        return (
            jnp.where(accept, w + step, w),
            jnp.where(accept, f_new, f),
            jnp.where(accept, g_new, g),
            jnp.where(accept, mu / 10, mu * 10),
            it + 1,
        )

    start = (weights, loss, grad, jnp.asarray(1e-8, weights.dtype), jnp.asarray(0))
    w, f, g, _, it = jax.lax.while_loop(cond, body, start)
    converged = norm(g) <= grad_tol
    return (
        jnp.where(converged, w, weights),
        jnp.where(converged, f, loss),
        jnp.where(converged, norm(g), norm(grad)),
        it,
        converged,
    )


def _damped_one(weights, data, grad_tol, objective, iterations):
    def norm(g):
        return jnp.sqrt(jnp.sum(g * g))

    loss, grad = objective.loss_and_grad(weights, data)

    def cond(carry):
        _, _, g, _, it, _ = carry
        return (norm(g) > grad_tol) & (it < iterations) & jnp.isfinite(norm(g))

    def body(carry):
        w, f, g, mu, it, hvps = carry
        hvp = lambda v: hessian_vector_product(objective, w, data, v)  # noqa: E731
        step, cg_steps, negative = conjugate_gradients(hvp, -g, 1e-3 * norm(g), mu)
        f_new, g_new = objective.loss_and_grad(w + step, data)
        accept = (norm(g_new) < norm(g)) & (f_new <= f + 1e-14 * jnp.maximum(1.0, jnp.abs(f)))
        accept = accept & jnp.isfinite(f_new) & ~negative
        return (
            jnp.where(accept, w + step, w),
            jnp.where(accept, f_new, f),
            jnp.where(accept, g_new, g),
            jnp.where(accept, mu / 10, mu * 10),
            it + 1,
            hvps + cg_steps,
        )

    start = (weights, loss, grad, jnp.asarray(1e-8, weights.dtype), jnp.asarray(0), jnp.asarray(0))
    w, f, g, _, it, hvps = jax.lax.while_loop(cond, body, start)
    converged = norm(g) <= grad_tol
    return (
        jnp.where(converged, w, weights),
        jnp.where(converged, f, loss),
        jnp.where(converged, norm(g), norm(grad)),
        it,
        converged,
        hvps,
    )


@quick_to_compile(static_argnames=("objective", "iterations"))
def damped_newton_cg(
    weights: jax.Array,
    data: TrainData,
    grad_tol: float,
    objective: Hashable,
    iterations: int = ITERATIONS,
) -> tuple[jax.Array, ...]:
    """`newton_polish` of a batch of runs (B, *param_shape), matrix-free. Returns
    (weights, loss, grad_norm, iterations, converged, hessian-vector products), each with
    leading axis B; where not converged the weights are the input weights."""
    return jax.vmap(_damped_one, (0, None, None, None, None))(
        weights, data, grad_tol, objective, iterations
    )
