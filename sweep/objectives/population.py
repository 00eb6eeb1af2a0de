"""The closed-form population loss as an objective for training: ReLU or Leaky ReLU
students of n neurons in d dimensions, unit output weights, under x ~ N(0, I_d).

`data` is the teacher (k, d); the orthonormal teacher V = [I_k 0] trains on the fast path
of `gaussian.loss_and_grad_orthonormal`, any other on the general formula.
"""

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from . import gaussian, leaky
from .initializers import Normal, initial_weights


@dataclass(frozen=True)
class PopulationLoss:
    """F(W) for weights (n, d); alpha = 0 is ReLU, else Leaky ReLU with that slope (student
    and teacher alike). Hashable: a static argument of jitted code, one compile per value."""

    n: int
    d: int
    alpha: float = 0.0
    orthonormal: bool = True  # the teacher is V = [I_k 0]

    def param_shape(self) -> tuple[int, int]:
        return (self.n, self.d)

    def chunk_floats(self) -> int:
        """Floats per run that size its training chunk on a CPU (`programs.chunk_runs`)."""
        return self.n * self.d

    def init(
        self,
        key: jax.Array,
        scale: float,
        dtype: DTypeLike = jnp.float64,
        normal: Normal = jax.random.normal,
    ) -> jax.Array:
        """Xavier/He-style N(0, scale^2) weights (n, d) from the run's key."""
        return initial_weights(key, self.n, self.d, scale, dtype, normal)

    def loss(self, weights: jax.Array, teacher: jax.Array) -> jax.Array:
        if self.alpha:
            return leaky.loss(weights, teacher, self.alpha)
        return gaussian.loss(weights, teacher)

    def loss_and_grad(self, weights: jax.Array, teacher: jax.Array) -> tuple[jax.Array, jax.Array]:
        if not self.orthonormal:
            return leaky.loss_and_grad(weights, teacher, self.alpha)
        if self.alpha:
            return leaky.loss_and_grad_orthonormal(weights, teacher, self.alpha)
        return gaussian.loss_and_grad_orthonormal(weights, teacher)

    def hessian(self, weights: jax.Array, teacher: jax.Array) -> jax.Array:
        """Analytic Hessian with respect to the flattened weights, (n d, n d)."""
        if self.alpha:
            return leaky.hessian(weights, teacher, self.alpha)
        return gaussian.hessian(weights, teacher)

    def hessian_operator(self, weights: jax.Array, teacher: jax.Array) -> Callable:
        """x -> the Hessian at `weights` applied to x (n, d), matrix-free, with the point's
        terms computed once (for the many products of Newton-CG and Lanczos)."""
        if self.alpha:
            return leaky.hessian_operator(weights, teacher, self.alpha)
        return gaussian.hessian_operator(weights, teacher)

    def watch(self, weights: jax.Array, teacher: jax.Array) -> jax.Array:
        """Nothing to track along the way here (see `Network.watch`)."""
        return jnp.zeros((), bool)
