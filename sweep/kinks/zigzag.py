"""Where a stalled run zig-zags: the (layer, point, neuron) pairs whose pre-activation
changes sign within a few gradient steps. Gradient descent that stalls on a kink crosses
it back and forth, so these pairs are the kink set the finish should hold, even when
they are not near zero at the one point the run stopped."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives import Network

ZIGZAG = 200  # gradient steps watched


@functools.partial(jax.jit, static_argnames=("net", "steps"))
def _flipped(theta, data, step_size, net, steps):
    def signs(t):
        return jnp.stack(net.preactivations(t, data[0])) > 0

    start = signs(theta)

    def step(_, carry):
        t, flipped = carry
        t = t - step_size * jax.grad(net.loss)(t, data)
        return t, flipped | (signs(t) != start)

    return jax.lax.fori_loop(0, steps, step, (theta, jnp.zeros_like(start)))[1]


def zigzag(net: Network, theta: np.ndarray, data: tuple, step_size: float) -> np.ndarray:
    """(layers, N, n) bool: the pairs that change sign within ZIGZAG steps of size
    step_size from theta."""
    return np.asarray(_flipped(jnp.asarray(theta, float), data, step_size, net, ZIGZAG))
