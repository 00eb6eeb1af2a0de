"""A one-hidden-layer network's point in neuron form, for exact work on kinks.

f(x_i) = o sum_j a_j sigma(w~_j . x~_i) + c, where w~_j = (w_j, b_j) holds a neuron's input
weights and bias, x~_i = (x_i s, 1) the input (s = 1/sqrt(d) under the NTK
parameterization; no 1 without biases), o the output scale (1/sqrt(n) under NTK with a
trained output, else 1), a_j the output weights (ones when fixed) and sigma(z) = z for
z > 0, alpha z for z < 0. A data point i sits on neuron j's kink when z_ij = w~_j . x~_i = 0.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..objectives import Network


@dataclass
class Neurons:
    a: np.ndarray  # (n,) output weights (ones when fixed)
    w: np.ndarray  # (n, D) input weights and bias of each neuron
    c: float  # output bias (0 when absent)
    x: np.ndarray  # (N, D) inputs as the neurons see them, with a 1 for the bias
    y: np.ndarray  # (N,) targets
    o: float  # output scale
    alpha: float
    trained: bool  # output weights trained
    has_c: bool  # an output bias

    @staticmethod
    def of(net: Network, theta: np.ndarray, data: tuple) -> "Neurons":
        if net.depth != 2:
            raise ValueError(f"neuron form needs depth 2, got {net.depth}")
        p = {
            key: np.asarray(value, float) for key, value in net.unflatten(np.asarray(theta)).items()
        }
        inputs, targets = (np.asarray(part, float) for part in data)
        x = inputs / math.sqrt(net.d) if net.ntk else inputs
        w = p["W1"]
        if net.biases:
            x = np.hstack([x, np.ones((len(x), 1))])
            w = np.hstack([w, p["b1"][:, None]])
        trained = net.train_output
        return Neurons(
            a=p["a"].copy() if trained else np.ones(net.n),
            w=w.copy(),
            c=float(p["c"]) if trained and net.biases else 0.0,
            x=x,
            y=targets.reshape(-1),
            o=1 / math.sqrt(net.n) if trained and net.ntk else 1.0,
            alpha=float(net.alpha),
            trained=trained,
            has_c=trained and net.biases,
        )

    def theta(self, net: Network) -> np.ndarray:
        """The flat parameter vector of this point (the layout of `Network.layers`)."""
        d = net.d
        blocks = {"W1": self.w[:, :d]}
        if net.biases:
            blocks["b1"] = self.w[:, d]
        if self.trained:
            blocks["a"] = self.a
            if net.biases:
                blocks["c"] = np.asarray(self.c)
        return np.concatenate([np.ravel(blocks[name]) for name, _, _ in net.layers()])

    @property
    def z(self) -> np.ndarray:
        """Pre-activations (N, n)."""
        return self.x @ self.w.T

    def scale(self) -> np.ndarray:
        """|w~_j| |x~_i| (N, n): the size a pre-activation is measured against."""
        return np.outer(np.linalg.norm(self.x, axis=1), np.linalg.norm(self.w, axis=1))

    def residuals(self) -> np.ndarray:
        z = self.z
        return self.o * (np.where(z > 0, z, self.alpha * z) @ self.a) + self.c - self.y

    def loss(self) -> float:
        r = self.residuals()
        return 0.5 * float(np.mean(r * r))

    def kinks(self, tol: float) -> np.ndarray:
        """(N, n) bool: point i on neuron j's kink, |z_ij| <= tol |w~_j| |x~_i|."""
        return np.abs(self.z) <= tol * self.scale()
