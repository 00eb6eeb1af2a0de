"""Closed-form population loss of a two-layer ReLU student under Gaussian inputs.

Student ``x -> sum_i relu(w_i . x)``, teacher ``x -> sum_j relu(v_j . x)``, ``x ~ N(0, I_d)``,
squared loss. Following Safran & Shamir (ICML 2018), who use Cho & Saul's arc-cosine kernel,

    E[relu(w.x) relu(v.x)] = g(w, v) = |w| |v| (sin t + (pi - t) cos t) / (2 pi),

with t the angle between w and v, so that

    F(W) = 1/2 sum_ij g(w_i, w_j) - sum_ij g(w_i, v_j) + 1/2 sum_ij g(v_i, v_j).

Its gradient is ``dF/dw_i = sum_j h(w_i, w_j) - sum_j h(w_i, v_j)`` with
``h(w, v) = (|v| sin t  w/|w| + (pi - t) v) / (2 pi)``, and its Hessian blocks are the
derivatives of h (Brutzkus & Globerson 2017, Safran & Shamir 2018):

    dh/dw = |v| / (2 pi |w|) (sin t (I - u u^T) + p p^T / sin t),   p = v/|v| - cos t  u
    dh/dv = ((pi - t) I + sin t  u vhat^T + p q^T / sin t) / (2 pi), q = u - cos t  vhat

with u = w/|w|, vhat = v/|v|. Both are finite at t = 0 (|p| = |q| = sin t), where naive
autodiff through ``arccos`` returns NaN; the code below takes that limit explicitly.

All functions take one run: ``weights`` is (n, d), ``teacher`` is (k, d).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .arccos import arccos

_TWO_PI = 2.0 * jnp.pi


def _geometry(a, b):
    """Norms, cosines and angles between the rows of a (n, d) and of b (m, d)."""
    norm_a = jnp.linalg.norm(a, axis=-1)
    norm_b = jnp.linalg.norm(b, axis=-1)
    denom = norm_a[:, None] * norm_b[None, :]
    # A zero neuron has no direction; cos = 1 makes its terms vanish smoothly.
    cos = jnp.where(denom > 0, (a @ b.T) / jnp.where(denom > 0, denom, 1.0), 1.0)
    cos = jnp.clip(cos, -1.0, 1.0)
    return norm_a, norm_b, cos, jnp.arccos(cos)


def _kernel_matrix(a, b):
    """g(a_i, b_j) for all pairs, shape (n, m)."""
    norm_a, norm_b, cos, angle = _geometry(a, b)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos**2, 0.0))
    return norm_a[:, None] * norm_b[None, :] * (sin + (jnp.pi - angle) * cos) / _TWO_PI


def _self_kernel_matrix(a):
    """g(a_i, a_j), with the diagonal g(a, a) = |a|^2 / 2 written exactly.

    The double ``where`` keeps autodiff away from arccos(1) on the diagonal, so that
    ``jax.grad``/``jax.hessian`` of `loss` stay finite at generic points.
    """
    m = a.shape[0]
    eye = jnp.eye(m, dtype=bool)
    sq = jnp.sum(a * a, axis=-1)
    norm = jnp.sqrt(sq)
    denom = norm[:, None] * norm[None, :]
    safe = jnp.where(eye | (denom == 0), 1.0, denom)
    cos = jnp.where(eye | (denom == 0), 0.0, (a @ a.T) / safe)
    cos = jnp.clip(cos, -1.0, 1.0)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos**2, 0.0))
    off = denom * (sin + (jnp.pi - jnp.arccos(cos)) * cos) / _TWO_PI
    return jnp.where(eye, 0.5 * sq[:, None], off)


def kernel(w: Float[Array, " d"], v: Float[Array, " d"]) -> Float[Array, ""]:
    """The arc-cosine kernel g(w, v) = E[relu(w.x) relu(v.x)] for two vectors."""
    return _kernel_matrix(w[None, :], v[None, :])[0, 0]


def loss(weights: Float[Array, "n d"], teacher: Float[Array, "k d"]) -> Float[Array, ""]:
    """Population squared loss F(W), a scalar. Zero exactly at the teacher."""
    student = jnp.sum(_self_kernel_matrix(weights))
    cross = jnp.sum(_kernel_matrix(weights, teacher))
    target = jnp.sum(_self_kernel_matrix(teacher))
    return 0.5 * student - cross + 0.5 * target


def _h_terms(cos):
    """sin t and pi - t for cosines of angles t, with the fast `arccos`."""
    return jnp.sqrt(jnp.maximum(1.0 - cos**2, 0.0)), jnp.pi - arccos(cos)


def loss_and_grad(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"]
) -> tuple[Float[Array, ""], Float[Array, "n d"]]:
    """F(W) and its analytic gradient (n, d), finite wherever no neuron is zero.

    One Gram matrix per term, no autodiff: this and `loss_and_grad_orthonormal` are the
    training step's hot path.
    """
    norm_w, _, cos_ww, _ = _geometry(weights, weights)
    norm_v = jnp.linalg.norm(teacher, axis=-1)
    _, _, cos_wv, _ = _geometry(weights, teacher)
    sin_ww, rest_ww = _h_terms(cos_ww)
    sin_wv, rest_wv = _h_terms(cos_wv)
    g_ww = norm_w[:, None] * norm_w[None, :] * (sin_ww + rest_ww * cos_ww)
    g_wv = norm_w[:, None] * norm_v[None, :] * (sin_wv + rest_wv * cos_wv)
    g_vv = _self_kernel_matrix(teacher)
    value = (0.5 * jnp.sum(g_ww) - jnp.sum(g_wv)) / _TWO_PI + 0.5 * jnp.sum(g_vv)

    unit_w = weights / jnp.where(norm_w > 0, norm_w, 1.0)[:, None]
    radial = (sin_ww @ norm_w - sin_wv @ norm_v)[:, None] * unit_w
    linear = rest_ww @ weights - rest_wv @ teacher
    return value, (radial + linear) / _TWO_PI


def loss_and_grad_orthonormal(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"]
) -> tuple[Float[Array, ""], Float[Array, "n d"]]:
    """`loss_and_grad` for the teacher ``orthonormal_teacher(k, d)`` (rows e_1..e_k).

    Only the teacher's shape is used: with V = [I_k 0], w.v_j is the j-th entry of w, so
    the cross term needs no matrix product, and the teacher's own term is the constant
    k/4 + k(k-1)/(4 pi). About a third fewer operations than the general form.
    """
    k = teacher.shape[0]
    n, d = weights.shape
    norm_w = jnp.linalg.norm(weights, axis=-1)
    positive = norm_w > 0
    unit_w = weights / jnp.where(positive, norm_w, 1.0)[:, None]
    # A zero neuron has no direction; cos = 1 makes its terms vanish smoothly.
    both = positive[:, None] & positive[None, :]
    cos_ww = jnp.where(both & ~jnp.eye(n, dtype=bool), jnp.clip(unit_w @ unit_w.T, -1.0, 1.0), 1.0)
    cos_wv = jnp.where(positive[:, None], jnp.clip(unit_w[:, :k], -1.0, 1.0), 1.0)
    sin_ww, rest_ww = _h_terms(cos_ww)
    sin_wv, rest_wv = _h_terms(cos_wv)
    g_ww = norm_w[:, None] * norm_w[None, :] * (sin_ww + rest_ww * cos_ww)
    g_wv = norm_w[:, None] * (sin_wv + rest_wv * cos_wv)
    value = (0.5 * jnp.sum(g_ww) - jnp.sum(g_wv)) / _TWO_PI + (k / 4 + k * (k - 1) / (4 * jnp.pi))

    radial = (sin_ww @ norm_w - jnp.sum(sin_wv, axis=1))[:, None] * unit_w
    linear = rest_ww @ weights - jnp.pad(rest_wv, ((0, 0), (0, d - k)))
    return value, (radial + linear) / _TWO_PI


def grad(weights: Float[Array, "n d"], teacher: Float[Array, "k d"]) -> Float[Array, "n d"]:
    """Analytic gradient dF/dW, shape (n, d)."""
    return loss_and_grad(weights, teacher)[1]


def _pair_blocks(w, v):
    """(dh(w, v)/dw, dh(w, v)/dv), each (d, d), with their t -> 0 limits."""
    d = w.shape[0]
    norm_w = jnp.linalg.norm(w)
    norm_v = jnp.linalg.norm(v)
    u = w / norm_w
    v_hat = v / norm_v
    cos = jnp.clip(u @ v_hat, -1.0, 1.0)
    angle = jnp.arccos(cos)
    p = v_hat - cos * u
    q = u - cos * v_hat
    # |p| = sin t exactly in exact arithmetic, and is more accurate than sqrt(1 - cos^2).
    sin = jnp.linalg.norm(p)
    parallel = sin < 1e-30
    inv_sin = jnp.where(parallel, 0.0, 1.0 / jnp.where(parallel, 1.0, sin))
    eye = jnp.eye(d, dtype=w.dtype)
    d_w = norm_v / (_TWO_PI * norm_w) * (sin * (eye - jnp.outer(u, u)) + jnp.outer(p, p) * inv_sin)
    d_v = ((jnp.pi - angle) * eye + sin * jnp.outer(u, v_hat) + jnp.outer(p, q) * inv_sin) / (
        _TWO_PI
    )
    return d_w, d_v


def hessian(weights: Float[Array, "n d"], teacher: Float[Array, "k d"]) -> Float[Array, "nd nd"]:
    """Analytic Hessian of F with respect to the flattened weights, shape (n*d, n*d)."""
    n, d = weights.shape
    pairs = jax.vmap(jax.vmap(_pair_blocks, (None, 0)), (0, None))
    dw_ww, dv_ww = pairs(weights, weights)  # (n, n, d, d) each
    dw_wv, _ = pairs(weights, teacher)  # (n, k, d, d)
    off_diagonal = ~jnp.eye(n, dtype=bool)[:, :, None, None]
    diagonal = (
        0.5 * jnp.eye(d, dtype=weights.dtype)
        + jnp.sum(jnp.where(off_diagonal, dw_ww, 0.0), axis=1)
        - jnp.sum(dw_wv, axis=1)
    )  # (n, d, d)
    blocks = jnp.where(off_diagonal, dv_ww, 0.0)
    blocks = blocks + jnp.eye(n, dtype=weights.dtype)[:, :, None, None] * diagonal[:, None]
    return blocks.transpose(0, 2, 1, 3).reshape(n * d, n * d)


def _inverse_sin(sin):
    """1 / sin t, and 0 for a parallel pair, whose p p^T / sin t terms vanish in the limit."""
    parallel = sin < 1e-30
    return jnp.where(parallel, 0.0, 1.0 / jnp.where(parallel, 1.0, sin))


def _own_block_operator(unit_w, rows, scale, cos, sin):
    """x -> sum_j dh(w_i, y_j)/dw_i applied to x_i, for every i: `rows` (m, d) are the unit
    y_j, scale_ij = |y_j| / (2 pi |w_i|) (0 for pairs left out); takes x and
    along_i = u_i . x_i. The terms that depend only on the point are computed here, once.

    dh/dw x = scale (sin (x - u (u . x)) + p (p . x) / sin) with p = y_hat - cos u."""
    weight = scale * _inverse_sin(sin)
    radial_scale = jnp.sum(scale * sin, axis=1)[:, None]

    def apply(x, along):
        coupling = weight * (x @ rows.T - cos * along[:, None])
        radial = radial_scale * (x - along[:, None] * unit_w)
        return radial + coupling @ rows - jnp.sum(coupling * cos, axis=1)[:, None] * unit_w

    return apply


def hessian_operator(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"]
) -> Callable[[Float[Array, "n d"]], Float[Array, "n d"]]:
    """x -> the Hessian of F at `weights` applied to x (n, d), without forming it.

    The point's geometry (norms, angles, arccos) is computed once here; each product is
    then a few Gram-matrix products, O(n (n + k) d), so that the many products of a
    conjugate-gradient solve or a Lanczos run at one point cost little. Equal to
    ``(hessian(weights, teacher) @ x.ravel()).reshape(n, d)`` where no neuron is zero."""
    n = weights.shape[0]
    off = ~jnp.eye(n, dtype=bool)
    norm_w, norm_v, cos_wv, _ = _geometry(weights, teacher)
    _, _, cos_ww, _ = _geometry(weights, weights)
    cos_ww = jnp.where(off, cos_ww, 1.0)
    sin_ww, rest_ww = _h_terms(cos_ww)
    sin_wv, _ = _h_terms(cos_wv)
    unit_w = weights / jnp.where(norm_w > 0, norm_w, 1.0)[:, None]
    unit_v = teacher / jnp.where(norm_v > 0, norm_v, 1.0)[:, None]
    inverse = 1.0 / (_TWO_PI * jnp.where(norm_w > 0, norm_w, 1.0))[:, None]
    own_ww = _own_block_operator(
        unit_w, unit_w, jnp.where(off, norm_w[None, :] * inverse, 0.0), cos_ww, sin_ww
    )
    own_wv = _own_block_operator(unit_w, unit_v, norm_v[None, :] * inverse, cos_wv, sin_wv)
    # sum_{j != i} dh(w_i, w_j)/dw_j x_j, dh/dv y = ((pi - t) y + sin u (v_hat . y)
    # + p (q . y) / sin) / (2 pi) with q = u - cos v_hat.
    sin_off = jnp.where(off, sin_ww, 0.0)
    inverse_sin = jnp.where(off, _inverse_sin(sin_ww), 0.0)
    rest_off = jnp.where(off, rest_ww, 0.0)

    def apply(x):
        along = jnp.sum(unit_w * x, axis=1)
        own = own_ww(x, along) - own_wv(x, along)
        coupling = inverse_sin * (unit_w @ x.T - cos_ww * along[None, :])
        cross = (
            rest_off @ x
            + (sin_off @ along)[:, None] * unit_w
            + coupling @ unit_w
            - jnp.sum(coupling * cos_ww, axis=1)[:, None] * unit_w
        ) / _TWO_PI
        return 0.5 * x + own + cross

    return apply


def min_hessian_eigenvalue(
    weights: Float[Array, "n d"], teacher: Float[Array, "k d"]
) -> Float[Array, ""]:
    """Smallest eigenvalue of the Hessian (a scalar)."""
    return jnp.linalg.eigvalsh(hessian(weights, teacher))[0]


def orthonormal_teacher(k: int, d: int | None = None, dtype=jnp.float64) -> Float[Array, "k d"]:
    """The teacher V = I_k (k neurons, input dimension d = k unless given, d >= k)."""
    d = k if d is None else d
    return jax.device_put(np.eye(k, d, dtype=dtype))  # on the host: no program to compile


def cross_gradient(a: Float[Array, "n d"], b: Float[Array, "m d"]) -> Float[Array, "n d"]:
    """sum_j dg(a_i, b_j)/da_i for every row a_i, shape (n, d): the gradient of
    sum_ij g(a_i, b_j) with respect to a (rows of b held fixed)."""
    norm_a, norm_b, cos, angle = _geometry(a, b)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos**2, 0.0))
    unit_a = a / jnp.where(norm_a > 0, norm_a, 1.0)[:, None]
    return ((sin @ norm_b)[:, None] * unit_a + (jnp.pi - angle) @ b) / _TWO_PI


def residual_correlation(
    directions: Float[Array, "m d"], others: Float[Array, "n d"], teacher: Float[Array, "k d"]
) -> Float[Array, " m"]:
    """D(u) = sum_j g(u, w_j) - sum_j g(u, v_j) for each row u of `directions`, shape (m,).

    This is the one-sided derivative of F when a zero neuron starts to grow along u
    (g is positively homogeneous): E[relu(u.x) (student(x) - teacher(x))].
    """
    return jnp.sum(_kernel_matrix(directions, others), axis=1) - jnp.sum(
        _kernel_matrix(directions, teacher), axis=1
    )
