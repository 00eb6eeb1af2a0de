"""Smallest Hessian eigenvalues of many points of one objective, in batched calls, and
once per distinct point up to the loss's symmetries."""

import functools
from collections.abc import Callable, Hashable

import jax
import numpy as np

from ..finishes.krylov import DENSE_LIMIT, lanczos_extremes, start_vector
from ..limits import SPECTRUM_GRID_DECIMALS
from ..objectives.data import TrainData

# Above krylov.DENSE_LIMIT parameters the smallest eigenvalue comes from Lanczos.
LANCZOS_STEPS = 300

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
    if size > DENSE_LIMIT:
        return matrix_free_min_eigenvalues(weights, data, objective)
    chunk_size = max(1, min(CHUNK, _CHUNK_ENTRIES // max(size * size, 1)))
    found = []
    for start in range(0, len(weights), chunk_size):
        chunk = weights[start : start + chunk_size]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], chunk_size - len(chunk), axis=0)])
        hessians = np.asarray(_hessians(padded, data, objective))[: len(chunk)]
        found.append(np.linalg.eigvalsh(hessians)[:, 0])
    return np.concatenate(found) if found else np.zeros(0)


# Distinct points are told apart on a grid of SPECTRUM_SPECTRUM_GRID_DECIMALS (`limits.py`): runs
# that reached one point agree to about stop.grad_tol / (smallest eigenvalue), far below it.
# Where the eigenvalue at the grid point is this close to 0, its sign is taken from the
# run's own point: moving to the grid (< 1e-9 per entry) shifts eigenvalues far less.
SIGN_MARGIN = 1e-4


def distinct_min_eigenvalues(
    weights: np.ndarray,
    data: TrainData,
    objective: Hashable,
    canonical: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, int]:
    """Smallest Hessian eigenvalue of each point (m, *param_shape), computed once per
    distinct point: at `canonical(w)` (a representative of w's orbit under symmetries that
    keep the spectrum) rounded to SPECTRUM_GRID_DECIMALS, a function of the point alone. Points
    whose grid value lies within SIGN_MARGIN of 0 get their own. Returns (values (m,),
    number of spectra computed)."""
    weights = np.asarray(weights)
    # (+ 0.0 turns -0.0 into 0.0, so that equal points have equal bytes.)
    grid = np.array([np.round(canonical(w), SPECTRUM_GRID_DECIMALS) + 0.0 for w in weights])
    grid = grid.reshape(weights.shape)
    keys = [point.tobytes() for point in grid]
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    distinct = np.fromiter(first.values(), int, len(first))
    values = dict(zip(first, min_eigenvalues(grid[distinct], data, objective), strict=True))
    found = np.array([values[key] for key in keys])
    close = np.flatnonzero(np.abs(found) < SIGN_MARGIN)
    if close.size:
        found[close] = min_eigenvalues(weights[close], data, objective)
    return found, len(distinct) + close.size


@functools.partial(jax.jit, static_argnames=("objective", "steps"))
def _lanczos_minimum(weights, data, objective, steps):
    hvp = objective.hessian_operator(weights, data)
    return lanczos_extremes(hvp, start_vector(weights.shape, weights.dtype), steps)[0]


def matrix_free_min_eigenvalues(
    weights: np.ndarray, data: TrainData, objective: Hashable, steps: int = LANCZOS_STEPS
) -> np.ndarray:
    """Smallest Hessian eigenvalue of each point (m, *param_shape) by Lanczos (`steps`
    steps, full reorthogonalization) on the objective's Hessian-vector products: the
    smallest Ritz value, which converges to the smallest eigenvalue from above."""
    weights = np.asarray(weights)
    steps = min(steps, int(np.prod(weights.shape[1:])))
    found = [float(_lanczos_minimum(w, data, objective, steps)) for w in weights]
    return np.asarray(found, float)
