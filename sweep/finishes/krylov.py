"""Matrix-free linear algebra on a Hessian: products, conjugate gradients, Lanczos.

Only Hessian-vector products are needed (the objective's own, O(a gradient)), so the
Newton finishes and the curvature checks cost the same per iteration at k = 100 as at
k = 6 relative to a step, and never hold an (nd x nd) matrix.
"""

import jax
import jax.numpy as jnp

# Above this many parameters (k = n = 32) curvature comes from Hessian-vector products
# only: a dense eigendecomposition costs O(p^3) time and p^2 memory (800 MB at k = 100).
DENSE_LIMIT = 1024

# Most conjugate-gradient steps per solve. A well-conditioned Newton system needs far
# fewer; one that needs more is a sign the point is no strict minimum, so a finish gives
# up early rather than spending thousands of products there.
CG_STEPS = 100


def _dot(a, b):
    return jnp.sum(a * b)


def conjugate_gradients(hvp, rhs, tol, shift=0.0, max_steps=CG_STEPS):
    """Solve (H + shift I) x = rhs by conjugate gradients to |residual| <= tol, in at most
    `max_steps` steps; returns (x, steps, negative) where negative says a direction of
    non-positive curvature was met (x is then of no use)."""

    def cond(carry):
        _, _, _, rr, steps, negative = carry
        return (jnp.sqrt(rr) > tol) & (steps < max_steps) & ~negative

    def body(carry):
        x, r, p, rr, steps, _ = carry
        hp = hvp(p) + shift * p
        curvature = _dot(p, hp)
        negative = curvature <= 0
        alpha = rr / jnp.where(negative, 1.0, curvature)
        x = x + alpha * p
        r = r - alpha * hp
        rr_next = _dot(r, r)
        p = r + rr_next / rr * p
        return x, r, p, rr_next, steps + 1, negative

    start = (jnp.zeros_like(rhs), rhs, rhs, _dot(rhs, rhs), jnp.asarray(0), jnp.asarray(False))
    x, _, _, _, steps, negative = jax.lax.while_loop(cond, body, start)
    return x, steps, negative


def lanczos_tridiagonal(hvp, start, steps):
    """The Lanczos tridiagonal of H after `steps` steps from `start`, with full
    reorthogonalization (few steps, so it is cheap and keeps the extremes honest):
    (diagonal, off-diagonal), each of length `steps` (the last off-diagonal is unused)."""
    size = start.size
    basis = jnp.zeros((steps, size), start.dtype)
    q = start.reshape(-1) / jnp.linalg.norm(start)

    def body(i, carry):
        basis, q, previous, beta, alphas, betas = carry
        basis = basis.at[i].set(q)
        w = hvp(q.reshape(start.shape)).reshape(-1)
        alpha = _dot(q, w)
        w = w - alpha * q - beta * previous
        # Twice, as rounding leaves a trace after one pass (rows past i are zero).
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)
        beta_next = jnp.linalg.norm(w)
        q_next = w / jnp.where(beta_next > 0, beta_next, 1.0)
        return basis, q_next, q, beta_next, alphas.at[i].set(alpha), betas.at[i].set(beta_next)

    zeros = jnp.zeros(steps, start.dtype)
    start_carry = (basis, q, jnp.zeros_like(q), jnp.asarray(0.0, start.dtype), zeros, zeros)
    _, _, _, _, alphas, betas = jax.lax.fori_loop(0, steps, body, start_carry)
    return alphas, betas


def ritz_extremes(alphas, betas):
    """(smallest, largest) eigenvalue of the tridiagonal (`lanczos_tridiagonal`)."""
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    ritz = jnp.linalg.eigvalsh(tridiagonal)
    return ritz[0], ritz[-1]


def lanczos_extremes(hvp, start, steps):
    """(smallest, largest) Ritz value of H after `steps` Lanczos steps from `start`."""
    return ritz_extremes(*lanczos_tridiagonal(hvp, start, steps))


def start_vector(shape, dtype=jnp.float64):
    """A fixed pseudo-random start for Lanczos: the same point always gets the same
    estimate, and no symmetry of the point makes it miss an eigenvector."""
    return jax.random.normal(jax.random.key(0), shape, dtype)
