"""The population loss and its gradient, written out, for the arcsine kernels: erf units
(Saad & Solla's soft committee machine) and normal_cdf units, output weights fixed to ones.

    K(w, v) = offset + scale * arcsin(u),   u = w.v / (a_w a_v),   a_w = sqrt(1 + |w|^2),

(erf(z / sqrt 2): scale 2/pi, offset 0; Phi(z): scale 1/(2 pi), offset 1/4). |u| < 1 for
every pair, a neuron with itself included, so nothing here is singular. With
D = 1 / sqrt(1 - u^2), the gradient of a neuron's terms is

    dK(w, v)/dw = scale D (v / (a_w a_v) - u w / a_w^2),

and the diagonal term 1/2 K(w, w) has the same formula (its two arguments' halves add up).
Two matrix products per step, as for ReLU (`gaussian.loss_and_grad_orthonormal`), where
autodiff of the kernel form (`kernel_loss.py`) costs about twice as much.
"""

import jax.numpy as jnp
from jax import Array


def _terms(inner: Array, left: Array, right: Array) -> tuple[Array, Array]:
    """u = inner / (left right^T) and D = 1 / sqrt(1 - u^2)."""
    u = inner / (left[:, None] * right[None, :])
    return u, 1.0 / jnp.sqrt(1.0 - u * u)


def loss_and_grad(
    weights: Array, teacher: Array, scale: float, offset: float
) -> tuple[Array, Array]:
    """F and dF/dW for students `weights` (n, d) and any teacher (k, d)."""
    n, k = weights.shape[0], teacher.shape[0]
    a = jnp.sqrt(1.0 + jnp.sum(weights * weights, axis=1))
    b = jnp.sqrt(1.0 + jnp.sum(teacher * teacher, axis=1))
    u_ww, d_ww = _terms(weights @ weights.T, a, a)
    u_wv, d_wv = _terms(weights @ teacher.T, a, b)
    u_vv, _ = _terms(teacher @ teacher.T, b, b)
    value = (
        scale
        * (
            0.5 * jnp.sum(jnp.arcsin(u_ww))
            - jnp.sum(jnp.arcsin(u_wv))
            + 0.5 * jnp.sum(jnp.arcsin(u_vv))
        )
        + offset * (n - k) ** 2 / 2
    )
    toward = (d_ww / (a[:, None] * a[None, :])) @ weights - (
        d_wv / (a[:, None] * b[None, :])
    ) @ teacher
    along = jnp.sum(d_ww * u_ww, axis=1) - jnp.sum(d_wv * u_wv, axis=1)
    return value, scale * (toward - (along / (a * a))[:, None] * weights)
