"""Smallest Hessian eigenvalues of many points of one objective, in batched calls."""

from collections.abc import Hashable

import jax
import numpy as np

from ..datasets import TrainData

_hessians = jax.jit(
    jax.vmap(lambda w, data, objective: objective.hessian(w, data), (0, None, None)),
    static_argnames=("objective",),
)

# Points per batched Hessian call: a fixed size per cell shape, so one compile per shape;
# fewer for large parameter counts, so a chunk's Hessians stay within ~128 MB.
CHUNK = 32
_CHUNK_ENTRIES = 2**24


def min_eigenvalues(weights: np.ndarray, data: TrainData, objective: Hashable) -> np.ndarray:
    """Smallest Hessian eigenvalue of each point (m, *param_shape), shape (m,).

    `data` is the objective's data argument. The Hessians come from JAX; LAPACK's
    eigvalsh through NumPy is about twice as fast as jnp.linalg.eigvalsh on a CPU for
    these sizes.
    """
    weights = np.asarray(weights)
    size = int(np.prod(weights.shape[1:]))
    chunk_size = max(1, min(CHUNK, _CHUNK_ENTRIES // max(size * size, 1)))
    found = []
    for start in range(0, len(weights), chunk_size):
        chunk = weights[start : start + chunk_size]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], chunk_size - len(chunk), axis=0)])
        hessians = np.asarray(_hessians(padded, data, objective))[: len(chunk)]
        found.append(np.linalg.eigvalsh(hessians)[:, 0])
    return np.concatenate(found) if found else np.zeros(0)
