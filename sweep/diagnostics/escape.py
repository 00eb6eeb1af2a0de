"""The escape-neuron test for stationary points where the Hessian does not exist.

Where a student neuron is zero, F is not twice differentiable. Following Wu, Simsek & Ged
(ICLR 2025), such a point is not a minimum when the zero neuron can "escape": growing it
along some unit direction u lowers the loss at first order, i.e. the residual correlation
D(u) = E[relu(u.x) (student(x) - teacher(x))] is negative for some u.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives import gaussian


@jax.jit
def _descend(directions, others, teacher, alpha):
    """Projected gradient descent of D on the unit sphere from many starting directions."""
    # Leaky ReLU: D_alpha(u) = (1 - alpha)^2 D(u) + alpha u.s, s = sum_i w_i - sum_j v_j.
    mismatch = jnp.sum(others, axis=0) - jnp.sum(teacher, axis=0)
    scale = (1 - alpha) ** 2

    def step(u, _):
        grad = scale * (gaussian.cross_gradient(u, others) - gaussian.cross_gradient(u, teacher))
        grad = grad + alpha * mismatch
        # Only the tangential part moves u on the sphere (D is 1-homogeneous).
        tangent = grad - jnp.sum(grad * u, axis=1, keepdims=True) * u
        u = u - 0.5 * tangent
        return u / jnp.linalg.norm(u, axis=1, keepdims=True), None

    directions, _ = jax.lax.scan(step, directions, None, length=300)
    return scale * gaussian.residual_correlation(directions, others, teacher) + alpha * (
        directions @ mismatch
    )


def min_escape_slope(
    others: np.ndarray, teacher: np.ndarray, alpha: float = 0.0, starts: int = 64, seed: int = 0
) -> float:
    """min over unit u of D(u), searched from the teacher's and students' directions, their
    negatives and random directions. A negative value proves the point is not a minimum.
    With alpha > 0 (Leaky ReLU) the slope is that of F_alpha (see `objectives/leaky.py`)."""
    d = teacher.shape[1]
    random = np.random.default_rng(seed).standard_normal((starts, d))
    mismatch = np.sum(others, axis=0) - np.sum(teacher, axis=0)
    candidates = np.vstack([teacher, -teacher, others, -others, mismatch, -mismatch, random])
    norms = np.linalg.norm(candidates, axis=1, keepdims=True)
    candidates = candidates[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    slopes = _descend(jnp.asarray(candidates), jnp.asarray(others), teacher, alpha)
    return float(jnp.min(slopes))
