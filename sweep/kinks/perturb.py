"""The independent check of a verdict: random perturbations (Wu, Simsek & Ged's own test).

Around a point theta, `trials` random directions with relative sizes |delta| / |theta|
drawn log-uniformly from [low, high]: a point called a minimum must have none that lowers
the loss by more than 1e-12 (relative); for a saddle the check also tries the verdict's
own descent direction at the same sizes and reports whichever descent it exhibits.
"""

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives import Network

SIZES = (1e-4, 1e-2)  # relative perturbation sizes, log-uniform between


@functools.partial(jax.jit, static_argnames="net")
def losses(thetas: jax.Array, data: tuple, net: Network) -> jax.Array:
    return jax.vmap(net.loss, (0, None))(thetas, data)


@dataclass
class Perturbed:
    drop: float  # largest (L(theta) - L(theta + delta)) / L(theta) found: > 0 is descent
    direction: np.ndarray  # the unit delta achieving it
    size: float  # its relative size


def perturb(
    net: Network,
    theta: np.ndarray,
    data: tuple,
    trials: int = 5000,
    sizes: tuple[float, float] = SIZES,
    seed: int = 0,
    direction: np.ndarray | None = None,
) -> Perturbed:
    """The best of `trials` random perturbations (and of +-`direction` at 25 sizes)."""
    theta = np.asarray(theta, float)
    rng = np.random.default_rng(seed)
    moves = rng.standard_normal((trials, len(theta)))
    moves /= np.linalg.norm(moves, axis=1, keepdims=True)
    relative = np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]), trials))
    if direction is not None:
        unit = direction / np.linalg.norm(direction)
        along = np.geomspace(*sizes, 25)
        moves = np.vstack([moves, unit * np.ones((50, 1)) * np.repeat([1, -1], 25)[:, None]])
        relative = np.concatenate([relative, along, along])
    scale = max(float(np.linalg.norm(theta)), 1e-300)
    steps = moves * (relative * scale)[:, None]
    base = float(losses(jnp.asarray(theta)[None], data, net)[0])
    found = np.concatenate(
        [np.asarray(losses(jnp.asarray(theta + chunk), data, net)) for chunk in np.array_split(
            steps, max(1, len(steps) // 1000))]
    )  # fmt: skip
    best = int(np.argmin(found))
    return Perturbed(
        drop=float((base - found[best]) / max(abs(base), 1e-300)),
        direction=moves[best],
        size=float(relative[best]),
    )
