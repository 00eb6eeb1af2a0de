"""The pieces of a deep network's loss around a point (`deep.py`, `finish_deep.py`).

A kink pair p is a (layer, data point, neuron) whose pre-activation z_p is 0 to within a
relative tolerance. Giving every activation a fixed slope (1 or alpha; `Network.apply`
with slopes) makes the loss a smooth polynomial L_s, a "piece"; `Pairs` evaluates the
loss, gradient and Hessian of a piece and the pre-activations of the pairs and their
Jacobian, in jitted calls whose shapes are padded so that few are compiled.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives import Network


def padded(count: int) -> int:
    """Row counts are padded to powers of two, so few shapes are compiled."""
    return max(4, 1 << (max(count, 1) - 1).bit_length())


@functools.partial(jax.jit, static_argnames="net")
def _piece(theta, data, slopes, rows, net):
    """Loss, gradient, the picked pre-activations and their Jacobian on one piece."""
    inputs, targets = data

    def loss(t):
        residual = net.apply(t, inputs, slopes) - targets
        return 0.5 * jnp.mean(residual * residual)

    def one(t, row):
        """The pre-activation of one pair, from its own data point: its gradient costs
        one point's backward pass, not the data set's."""
        layer, point, neuron = row
        point_slopes = tuple(s[point][None] for s in slopes)
        z = jnp.stack(net.preactivations(t, inputs[point][None], point_slopes))
        return z[layer, 0, neuron]

    value, gradient = jax.value_and_grad(loss)(theta)
    z = jnp.stack(net.preactivations(theta, inputs, slopes))
    picked = z[rows[:, 0], rows[:, 1], rows[:, 2]]
    jacobian = jax.vmap(jax.grad(one), (None, 0))(theta, rows)
    return value, gradient, picked, jacobian


@functools.partial(jax.jit, static_argnames="net")
def _lagrangian_hessian(theta, data, slopes, rows, weights, net):
    """Hessian of L_s + weights . z_rows on one piece."""
    inputs, targets = data

    def lagrangian(t):
        residual = net.apply(t, inputs, slopes) - targets
        z = jnp.stack(net.preactivations(t, inputs, slopes))
        return 0.5 * jnp.mean(residual * residual) + weights @ z[rows[:, 0], rows[:, 1], rows[:, 2]]

    return jax.hessian(lagrangian)(theta)


class Pairs:
    """The kink pairs of a point at a relative tolerance, and the pieces around it."""

    def __init__(self, net: Network, theta: np.ndarray, data: tuple, tol: float, also=None):
        # On the device once: the finish evaluates pieces thousands of times.
        self.net, self.data = net, jax.device_put(data)
        self._slopes, self._rows = {}, None
        z = np.stack([np.asarray(layer) for layer in net.preactivations(theta, data[0])])
        self.z = z
        self.on = np.abs(z) <= tol * scales(net, theta, data[0], z)
        if also is not None:
            self.on |= also
        self.rows = np.argwhere(self.on)  # (m, 3): layer, point, neuron
        self.base = np.where(z > 0, 1.0, net.alpha)
        self.groups = self._groups()

    def _groups(self) -> list[np.ndarray]:
        """Pairs that share one side. Under ReLU a point whose previous layer is off (every
        pre-activation there < 0, none on a kink) reaches neuron j with z = b_j alone:
        all such pairs of that neuron are one constraint, on one side together."""
        keys = []
        for layer, point, neuron in self.rows:
            previous = self.z[layer - 1, point] if layer else None
            shared = (layer and self.net.alpha == 0 and self.net.biases
                      and np.all(previous < 0) and not self.on[layer - 1, point].any())  # fmt: skip
            keys.append((layer, -1, neuron) if shared else (layer, point, neuron))
        order = {}
        for index, key in enumerate(keys):
            order.setdefault(key, []).append(index)
        return [np.array(members) for members in order.values()]

    @property
    def count(self) -> int:
        return len(self.rows)

    def slopes(self, sides: np.ndarray) -> tuple:
        """The slopes of the piece where kink pair p is on side sides[p] (+1 / -1)."""
        key = np.asarray(sides).tobytes()
        if key not in self._slopes:  # the last piece only: Newton stays on one
            slopes = self.base.copy()
            layer, point, neuron = self.rows.T
            slopes[layer, point, neuron] = np.where(sides > 0, 1.0, self.net.alpha)
            self._slopes = {key: tuple(jnp.asarray(s) for s in slopes)}
        return self._slopes[key]

    def padded_rows(self) -> jnp.ndarray:
        if self._rows is None:
            rows = np.zeros((padded(self.count), 3), int)
            rows[: self.count] = self.rows
            self._rows = jnp.asarray(rows)
        return self._rows

    def piece(self, theta, sides):
        """(loss, gradient, z of the pairs, their Jacobian (m, p)) on a piece."""
        value, gradient, z, jacobian = _piece(
            jnp.asarray(theta), self.data, self.slopes(sides), self.padded_rows(), self.net
        )
        m = self.count
        return float(value), np.asarray(gradient), np.asarray(z)[:m], np.asarray(jacobian)[:m]

    def hessian(self, theta, sides, multipliers):
        weights = np.zeros(padded(self.count))
        weights[: self.count] = multipliers
        found = _lagrangian_hessian(
            jnp.asarray(theta), self.data, self.slopes(sides), self.padded_rows(),
            jnp.asarray(weights), self.net,
        )  # fmt: skip
        return np.asarray(found)


def scales(net: Network, theta, inputs, z) -> np.ndarray:
    """|(w_j, b_j)| |(h_i, 1)| per layer, point and neuron: what z_ij is measured against."""
    p = {key: np.asarray(value) for key, value in net.unflatten(jnp.asarray(theta)).items()}
    h, found = np.asarray(inputs), []
    for layer in range(1, net.depth):
        weight = p[f"W{layer}"] / (np.sqrt(p[f"W{layer}"].shape[1]) if net.ntk else 1.0)
        rows = np.sum(weight**2, axis=1) + (p[f"b{layer}"] ** 2 if net.biases else 0.0)
        found.append(np.outer(np.sqrt(np.sum(h**2, axis=1) + 1.0), np.sqrt(rows)))
        zl = z[layer - 1]
        h = np.where(zl > 0, zl, net.alpha * zl)
    return np.stack(found)
