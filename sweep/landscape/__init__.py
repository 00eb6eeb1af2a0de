"""Objectives as pure JAX functions of (params, data), and the one a config chooses.

Every landscape offers the same methods: `param_shape()`, `init(key, scale, dtype)`,
`loss`, `loss_and_grad` and `hessian` of (params, data), the Hessian with respect to the
flattened params, and `watch(params, data)`: a condition training records if it ever
holds (a kink entering 1-D data). `data` is what `datasets.make` gives as `train`: the
teacher for the closed form, (inputs, targets) for a finite data set.
"""

from dataclasses import dataclass

import jax.numpy as jnp

from ..init import initial_weights
from . import gaussian as gaussian
from . import leaky as leaky
from .network import Network as Network


@dataclass(frozen=True)
class Landscape:
    """The closed-form population loss under Gaussian inputs for the orthonormal teacher:
    ReLU (alpha = 0) or Leaky ReLU with slope alpha for student and teacher alike, for
    students of n neurons in d dimensions (weights (n, d), unit output weights).

    Hashable, so it can be a static argument of jitted code: one compile per landscape.
    """

    alpha: float = 0.0
    n: int = 0
    d: int = 0

    def param_shape(self):
        return (self.n, self.d)

    def init(self, key, scale, dtype=jnp.float64):
        return initial_weights(key, self.n, self.d, scale, dtype)

    def loss_and_grad(self, weights, teacher):
        if self.alpha:
            return leaky.loss_and_grad_orthonormal(weights, teacher, self.alpha)
        return gaussian.loss_and_grad_orthonormal(weights, teacher)

    def loss(self, weights, teacher):
        if self.alpha:
            return leaky.loss(weights, teacher, self.alpha)
        return gaussian.loss(weights, teacher)

    def watch(self, weights, teacher):
        """Nothing to track along the way here (see `Network.watch`)."""
        return jnp.zeros((), bool)

    def hessian(self, weights, teacher):
        if self.alpha:
            return leaky.hessian(weights, teacher, self.alpha)
        return gaussian.hessian(weights, teacher)


RELU = Landscape()


def for_problem(problem, cell=None, init=None):
    """The landscape of a `config.Problem` for a cell (its n and d), with `config.Init`."""
    alpha = problem.alpha if problem.activation == "leaky_relu" else 0.0
    n, d = (cell.n, cell.d) if cell is not None else (0, 0)
    if problem.kind == "gaussian_relu":
        return Landscape(alpha=alpha, n=n, d=d)
    return Network(
        n=n,
        d=d,
        depth=problem.depth,
        biases=problem.biases,
        train_output=problem.output == "trained",
        alpha=alpha,
        ntk=init is not None and init.parameterization == "ntk",
        bias_scale=float(init.bias_scale) if init is not None else 0.0,
    )


def is_closed_form(surface):
    return isinstance(surface, Landscape)
