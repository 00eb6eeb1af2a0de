"""Closed-form population loss of Leaky ReLU students and teachers under Gaussian inputs.

With leaky(z) = alpha z + (1 - alpha) relu(z) and x ~ N(0, I_d), E[(w.x) relu(v.x)] = w.v / 2
and E[(w.x)(v.x)] = w.v, so

    E[leaky(w.x) leaky(v.x)] = alpha w.v + (1 - alpha)^2 g(w, v)

with g the arc-cosine kernel of `gaussian.py`. Summed over the network,

    F_alpha(W) = (1 - alpha)^2 F(W) + alpha/2 |sum_i w_i - sum_j v_j|^2,

a ReLU landscape plus a quadratic in the sum of the neurons: its gradient adds
alpha (sum_i w_i - sum_j v_j) to every row, its Hessian adds alpha (1 1^T) (x) I_d.
alpha = 0 is the ReLU landscape, alpha = 1 the linear one.
"""

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

from . import gaussian


def _mismatch(weights, teacher):
    return jnp.sum(weights, axis=0) - jnp.sum(teacher, axis=0)


def loss(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"], alpha: float
) -> Float[Array, ""]:
    s = _mismatch(weights, teacher)
    return (1 - alpha) ** 2 * gaussian.loss(weights, teacher) + 0.5 * alpha * jnp.sum(s * s)


def hessian(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"], alpha: float
) -> Float[Array, "nd nd"]:
    n, d = weights.shape
    linear = alpha * jnp.kron(jnp.ones((n, n)), jnp.eye(d))
    return (1 - alpha) ** 2 * gaussian.hessian(weights, teacher) + linear


def hessian_operator(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"], alpha: float
) -> Callable[[Float[Array, "n d"]], Float[Array, "n d"]]:
    """x -> `hessian(...) @ x.ravel()` without forming the Hessian (see
    `gaussian.hessian_operator`)."""
    relu = gaussian.hessian_operator(weights, teacher)
    return lambda x: (1 - alpha) ** 2 * relu(x) + alpha * jnp.sum(x, axis=0)[None, :]


def loss_and_grad(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"], alpha: float
) -> tuple[Float[Array, ""], Float[Array, "n d"]]:
    """F_alpha and its gradient for any teacher (alpha = 0: the ReLU loss)."""
    value, grad = gaussian.loss_and_grad(weights, teacher)
    if not alpha:
        return value, grad
    s = _mismatch(weights, teacher)
    scale = (1 - alpha) ** 2
    return scale * value + 0.5 * alpha * jnp.sum(s * s), scale * grad + alpha * s[None, :]


def loss_and_grad_orthonormal(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"], alpha: float
) -> tuple[Float[Array, ""], Float[Array, "n d"]]:
    """F_alpha and its gradient for the orthonormal teacher (the training step's path)."""
    value, grad = gaussian.loss_and_grad_orthonormal(weights, teacher)
    s = _mismatch(weights, teacher)
    scale = (1 - alpha) ** 2
    return scale * value + 0.5 * alpha * jnp.sum(s * s), scale * grad + alpha * s[None, :]
