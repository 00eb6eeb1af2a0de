"""The teacher network's neurons (k, d), for every problem kind: V = [I_k 0], k random
Gaussian directions drawn from the sweep seed (never from the student width or a run, so
every run and width of a cell faces the same teacher), or rows read from a file; then,
where `problem.teacher_norms` is set, scaled to those norms."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ConfigError, ProblemSettings
from ..objectives import gaussian

# The fold-in tag of the teacher's stream (see `sampling.py`'s other streams).
TEACHER_STREAM = 4


def stream_key(seed: int, tag: int, k: int, d: int) -> jax.Array:
    """The key of one stream drawn from the root seed, for teacher width k and dimension d."""
    key = jax.random.fold_in(jax.random.key(seed), tag)
    return jax.random.fold_in(jax.random.fold_in(key, k), d)


def read_file(path: str) -> np.ndarray:
    """A teacher matrix from a .npy file or a text file of rows (whitespace or commas)."""
    where = Path(path).expanduser()
    try:
        if where.suffix == ".npy":
            rows = np.load(where)
        else:
            rows = np.loadtxt(where, delimiter="," if where.suffix == ".csv" else None, ndmin=2)
    except (OSError, ValueError) as error:
        raise ConfigError(
            "problem.teacher_file",
            "a readable .npy or text matrix",
            path,
            detail=f"problem.teacher_file: cannot read {path}: {error}",
        ) from None
    rows = np.asarray(rows, float)
    if rows.ndim != 2 or not np.all(np.isfinite(rows)):
        raise ConfigError("problem.teacher_file", "a finite matrix of k rows and d columns",
                          f"{path} (shape {rows.shape})")  # fmt: skip
    return rows


def teacher_neurons(problem: ProblemSettings, k: int, d: int, seed: int) -> jax.Array:
    """The teacher's neurons (k, d) of a cell."""
    if problem.teacher == "orthonormal":
        rows = gaussian.orthonormal_teacher(k, d)
    elif problem.teacher == "file":
        found = read_file(problem.teacher_file)
        if found.shape != (k, d):
            raise ConfigError(
                "problem.teacher_file",
                f"{k} rows and {d} columns (sweep.k and problem.d)",
                f"{problem.teacher_file} of shape {found.shape}",
            )
        rows = jnp.asarray(found)
    else:
        directions = jax.random.normal(stream_key(seed, TEACHER_STREAM, k, d), (k, d), jnp.float64)
        rows = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    if problem.teacher_norms:
        norms = np.broadcast_to(np.asarray(problem.teacher_norms, float), (k,))
        current = np.linalg.norm(np.asarray(rows), axis=1)
        rows = jnp.asarray(np.asarray(rows) * (norms / current)[:, None])
    return rows
