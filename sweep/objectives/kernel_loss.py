"""The population loss of any activation (`kernels.py`), any teacher, and output weights
fixed to ones or trained, under x ~ N(0, I_d):

    F = 1/2 sum_ij a_i a_j K(w_i, w_j) - sum_ij a_i K(w_i, v_j) + 1/2 sum_ij K(v_i, v_j),

K(w, v) = E[s(w.x) s(v.x)], a the student's output weights (ones when fixed), the
teacher's output weights ones. With fixed output weights a run's parameters are its
weights (n, d); with trained ones, (n, d + 1): each neuron's row followed by its output
weight. Gradients, Hessians and Hessian products come from JAX autodiff of this formula
(the kernels are written so that all of them stay finite).

ReLU and Leaky ReLU with fixed output weights train on their own analytic formulas
(`population.py`); this serves every other case.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from . import arcsine, kernels
from .initializers import Normal, initial_weights


@dataclass(frozen=True)
class KernelLoss:
    """F for n student neurons in d dimensions; hashable (a static argument of jitted
    code). `kernel` is one of `kernels.py`'s."""

    n: int
    d: int
    kernel: Any
    trained_output: bool = False

    def param_shape(self) -> tuple[int, int]:
        return (self.n, self.d + self.trained_output)

    def chunk_floats(self) -> int:
        """Floats per run a training step holds: a quadrature kernel keeps every node of
        every pair of neurons."""
        nodes = self.kernel.size() if hasattr(self.kernel, "size") else 1
        return self.n * (self.n + self.d) * nodes

    def init(
        self,
        key: jax.Array,
        scale: float,
        dtype: DTypeLike = jnp.float64,
        normal: Normal = jax.random.normal,
    ) -> jax.Array:
        """N(0, scale^2) weights (n, d) from the run's key, as every population run draws
        them; trained output weights start at one (the fixed-output landscape's start)."""
        weights = initial_weights(key, self.n, self.d, scale, dtype, normal)
        if not self.trained_output:
            return weights
        return jnp.concatenate([weights, jnp.ones((self.n, 1), dtype)], axis=1)

    def split(self, params: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(weights (n, d), output weights (n,)) of a run's parameters."""
        if self.trained_output:
            return params[:, : self.d], params[:, self.d]
        return params, jnp.ones(params.shape[0], params.dtype)

    def loss(self, params: jax.Array, teacher: jax.Array) -> jax.Array:
        weights, output = self.split(params)
        student = output @ kernels.self_matrix(self.kernel, weights) @ output
        cross = jnp.sum(output @ kernels.matrix(self.kernel, weights, teacher))
        target = jnp.sum(kernels.self_matrix(self.kernel, teacher))
        return 0.5 * student - cross + 0.5 * target

    def loss_and_grad(self, params: jax.Array, teacher: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The arcsine kernels' written-out gradient (`arcsine.py`) with fixed output
        weights; autodiff of `loss` otherwise."""
        closed = getattr(self.kernel, "arcsine", None)
        if closed and not self.trained_output:
            return arcsine.loss_and_grad(params, teacher, *closed)
        return jax.value_and_grad(self.loss)(params, teacher)

    def hessian(self, params: jax.Array, teacher: jax.Array) -> jax.Array:
        """The Hessian with respect to the flattened parameters, (p, p)."""
        size = params.size
        flat = jax.hessian(lambda x: self.loss(x.reshape(params.shape), teacher))
        return flat(params.reshape(-1)).reshape(size, size)

    def hessian_operator(self, params: jax.Array, teacher: jax.Array) -> Callable:
        """x -> the Hessian at `params` applied to x (forward over reverse mode)."""
        gradient = jax.grad(self.loss)
        return lambda x: jax.jvp(lambda p: gradient(p, teacher), (params,), (x,))[1]

    def watch(self, params: jax.Array, teacher: jax.Array) -> jax.Array:
        return jnp.zeros((), bool)
