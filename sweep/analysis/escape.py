"""The escape-neuron test for stationary points where the Hessian does not exist.

Where a student neuron is zero, F is not twice differentiable. Following Wu, Simsek & Ged
(ICLR 2025), such a point is not a minimum when the zero neuron can "escape": growing it
along some unit direction u lowers the loss at first order, i.e. the residual correlation
D(u) = E[relu(u.x) (student(x) - teacher(x))] is negative for some u.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape import gaussian


@jax.jit
def _descend(directions, others, teacher):
    """Projected gradient descent of D on the unit sphere from many starting directions."""

    def step(u, _):
        grad = gaussian.cross_gradient(u, others) - gaussian.cross_gradient(u, teacher)
        # Only the tangential part moves u on the sphere (D is 1-homogeneous).
        tangent = grad - jnp.sum(grad * u, axis=1, keepdims=True) * u
        u = u - 0.5 * tangent
        return u / jnp.linalg.norm(u, axis=1, keepdims=True), None

    directions, _ = jax.lax.scan(step, directions, None, length=300)
    return gaussian.residual_correlation(directions, others, teacher)


def min_escape_slope(others, teacher, starts=64, seed=0):
    """min over unit u of D(u), searched from the teacher's and students' directions, their
    negatives and random directions. A negative value proves the point is not a minimum."""
    d = teacher.shape[1]
    random = np.random.default_rng(seed).standard_normal((starts, d))
    candidates = np.vstack([teacher, -teacher, others, -others, random])
    norms = np.linalg.norm(candidates, axis=1, keepdims=True)
    candidates = candidates[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    return float(jnp.min(_descend(jnp.asarray(candidates), jnp.asarray(others), teacher)))
