"""Empirical squared loss of a fully connected network on a finite data set.

The student is x -> a . act(W_{L-1} ... act(W_1 x + b_1) ... + b_{L-1}) + c with depth L
(weight layers; 2 = one hidden layer of width n), act = ReLU or Leaky ReLU(alpha),
optional biases b_l (and c), and an output layer a that is trained or fixed to ones (the
teacher-student setting of Safran & Shamir). The loss is

    L(theta) = 1/(2N) sum_i (f(x_i) - y_i)^2,

the empirical counterpart of the population loss F of `gaussian.py` (same 1/2), so the
two can be compared directly. Holzmüller & Steinwart (JMLR 2022) train such nets on 1-D
data; Liu (2021) deeper ones on data no linear model fits.

Parameters of one run are a flat vector theta (layout in `Network.layers`), so training,
the Newton polish and the Hessian check treat every landscape alike. Gradients and
Hessians come from autodiff: the network is piecewise polynomial in theta, and away from
the measure-zero set where a pre-activation is exactly 0 these are exact.

Parameterization: "standard" uses W_l as written; "ntk" (Jacot et al. 2018) multiplies each
weight layer by 1/sqrt(fan_in) in the forward pass, so its parameters start at order 1.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Bool, Float

from .initializers import Normal


@dataclass(frozen=True)
class Network:
    """A student architecture (hashable: a static argument of jitted code)."""

    n: int  # hidden width
    d: int  # input dimension
    depth: int = 2  # weight layers
    biases: bool = False
    train_output: bool = False  # else the output weights are fixed to ones
    alpha: float = 0.0  # Leaky ReLU slope for z < 0; 0 is ReLU
    ntk: bool = False  # NTK parameterization
    bias_scale: float = 0.0  # standard deviation of the initial biases

    def layers(self) -> list[tuple[str, tuple[int, ...], int | None]]:
        """(name, shape, fan_in) of each parameter block, in the order of theta."""
        blocks, fan_in = [], self.d
        for layer in range(1, self.depth):
            blocks.append((f"W{layer}", (self.n, fan_in), fan_in))
            if self.biases:
                blocks.append((f"b{layer}", (self.n,), None))
            fan_in = self.n
        if self.train_output:
            blocks.append(("a", (self.n,), self.n))
            if self.biases:
                blocks.append(("c", (), None))
        return blocks

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape, _ in self.layers())

    def param_shape(self) -> tuple[int]:
        return (self.size,)

    def unflatten(self, theta: Float[Array, " p"]) -> dict[str, Array]:
        """The parameter blocks of theta, by name."""
        blocks, offset = {}, 0
        for name, shape, _ in self.layers():
            count = math.prod(shape)
            blocks[name] = theta[offset : offset + count].reshape(shape)
            offset += count
        return blocks

    def init(
        self,
        key: Array,
        scale: float,
        dtype: DTypeLike = jnp.float64,
        normal: Normal = jax.random.normal,
    ) -> Float[Array, " p"]:
        """Initial theta: each weight layer N(0, scale^2 d / fan_in), biases N(0, bias_scale^2).

        `scale` is the first layer's standard deviation (1/sqrt(d) for Xavier, sqrt(2/d) for
        He), so every layer keeps the same fan-in rule. Under the NTK parameterization the
        forward pass divides by sqrt(fan_in), so the parameters start at scale sqrt(d).
        """
        parts = []
        for index, (_, shape, fan_in) in enumerate(self.layers()):
            # The first layer draws from the run's key itself, as the closed-form landscape
            # does: a plain network starts where the population-loss run of that key does.
            block_key = key if index == 0 else jax.random.fold_in(key, index)
            draw = normal(block_key, shape, dtype)
            if fan_in is None:
                std = self.bias_scale
            elif self.ntk:
                std = scale * math.sqrt(self.d)
            else:
                std = scale * math.sqrt(self.d / fan_in)
            parts.append((std * draw).reshape(-1))
        return jnp.concatenate(parts) if parts else jnp.zeros(0, dtype)

    def activation(self, z: Array) -> Array:
        return jnp.where(z > 0, z, self.alpha * z) if self.alpha else jax.nn.relu(z)

    def apply(
        self,
        theta: Float[Array, " p"],
        inputs: Float[Array, "N d"],
        slopes: tuple[Array, ...] | None = None,
    ) -> Float[Array, " N"]:
        """Outputs for inputs (N, d), shape (N,).

        With `slopes` (one (N, n) array per hidden layer) every neuron is linear with the
        given slope on each point: the smooth piece of the loss with that activation
        pattern (`sweep/kinks/`)."""
        p = self.unflatten(theta)
        h = inputs
        for layer in range(1, self.depth):
            z = self._preactivation(p, layer, h)
            h = self.activation(z) if slopes is None else slopes[layer - 1] * z
        return self._output(p, h)

    def preactivations(
        self,
        theta: Float[Array, " p"],
        inputs: Float[Array, "N d"],
        slopes: tuple[Array, ...] | None = None,
    ) -> tuple[Float[Array, "N n"], ...]:
        """The pre-activations of every hidden layer on the inputs, one (N, n) each (on
        the piece of `slopes`, as in `apply`)."""
        p = self.unflatten(theta)
        h, found = inputs, []
        for layer in range(1, self.depth):
            z = self._preactivation(p, layer, h)
            found.append(z)
            h = self.activation(z) if slopes is None else slopes[layer - 1] * z
        return tuple(found)

    def _preactivation(self, p: dict, layer: int, h: Array) -> Array:
        weight = p[f"W{layer}"]
        if self.ntk:
            weight = weight / math.sqrt(weight.shape[1])
        z = h @ weight.T
        return z + p[f"b{layer}"] if self.biases else z

    def _output(self, p: dict, h: Array) -> Array:
        if not self.train_output:
            return jnp.sum(h, axis=-1)
        out = h @ (p["a"] / math.sqrt(self.n) if self.ntk else p["a"])
        return out + p["c"] if self.biases else out

    def loss(self, theta: Float[Array, " p"], data: tuple[Array, Array]) -> Float[Array, ""]:
        inputs, targets = data
        residual = self.apply(theta, inputs) - targets
        return 0.5 * jnp.mean(residual * residual)

    def loss_and_grad(
        self, theta: Float[Array, " p"], data: tuple[Array, Array]
    ) -> tuple[Float[Array, ""], Float[Array, " p"]]:
        return jax.value_and_grad(self.loss)(theta, data)

    def hessian(self, theta: Float[Array, " p"], data: tuple[Array, Array]) -> Float[Array, "p p"]:
        return jax.hessian(self.loss)(theta, data)

    def hessian_operator(self, theta: Float[Array, " p"], data: tuple[Array, Array]) -> Callable:
        """x -> H x, from the dense Hessian computed once per point."""
        hessian = self.hessian(theta, data)
        return lambda x: (hessian @ x.reshape(-1)).reshape(x.shape)

    def chunk_floats(self) -> None:
        """No CPU training chunks: a network's batches are compacted in a cell's tail."""
        return None

    def watch(self, theta: Float[Array, " p"], data: tuple[Array, Array]) -> Bool[Array, ""]:
        """For a 1-D student with biases (depth 2): is a kink -b_i/w_i of a neuron that
        matters strictly inside the range of the data on the negative or the positive
        half-line? Training records whether this ever held (Holzmüller & Steinwart's
        "essentially linear" runs never let a kink in). False for other students."""
        if not (self.d == 1 and self.depth == 2 and self.biases):
            return jnp.zeros((), bool)
        p = self.unflatten(theta)
        w, b = p["W1"][:, 0], p["b1"]
        matters = w != 0
        if self.train_output:
            matters = matters & (p["a"] != 0)
        kink = -b / jnp.where(matters, w, 1.0)
        x = data[0][:, 0]
        inside = jnp.zeros(w.shape, bool)
        for side in (x < 0, x > 0):
            low = jnp.min(jnp.where(side, x, jnp.inf))
            high = jnp.max(jnp.where(side, x, -jnp.inf))
            # A kink on the edge point itself, to rounding (where the exact finish puts
            # one that gradient descent approaches), leaves the fit affine on the data.
            edge = 1e-9 * (high - low)
            inside = inside | ((kink > low + edge) & (kink < high - edge))
        return jnp.any(matters & inside)

    def ntk_max_eigenvalue(
        self, theta: Float[Array, " p"], data: tuple[Array, Array], iterations: int = 300
    ) -> Float[Array, ""]:
        """Largest eigenvalue of the NTK Gram matrix J J^T / N at theta (J = df(x_i)/dtheta).

        It is also the largest eigenvalue of the Gauss-Newton part of the loss's Hessian,
        so a step of 1/lambda is half the step at which gradient descent turns unstable.
        Power iteration (the Rayleigh quotient converges like (lambda_2/lambda_1)^(2 t)):
        matrix products only, because a batch of LAPACK eigensolvers run on several CPU
        devices at once can deadlock XLA's shared thread pool.
        """
        inputs, _ = data

        def output(t, x):
            return self.apply(t, x[None])[0]

        # Row i of the Jacobian is the gradient of output i alone. jax.jacrev of all N
        # outputs would carry N one-hot cotangents back through all N points: N^2
        # intermediates, 4.5 GB for a start of 64 runs at n = 7, N = 500 (the peak of a
        # deep sweep). The rows are the same numbers, bit for bit (measured).
        jacobian = jax.vmap(jax.grad(output), (None, 0))(theta, inputs)  # (N, P)
        if jacobian.shape[0] <= jacobian.shape[1]:
            gram = jacobian @ jacobian.T
        else:
            gram = jacobian.T @ jacobian
        gram = gram / inputs.shape[0]
        # A fixed start with no special direction: never orthogonal to the top eigenvector
        # except by a coincidence of measure zero.
        start = jnp.cos(jnp.arange(gram.shape[0], dtype=gram.dtype) * 1.618 + 0.5)

        def power_step(_, vector):
            image = gram @ vector
            return image / jnp.maximum(jnp.linalg.norm(image), jnp.finfo(gram.dtype).tiny)

        vector = jax.lax.fori_loop(0, iterations, power_step, start / jnp.linalg.norm(start))
        return vector @ gram @ vector
