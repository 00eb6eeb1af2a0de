"""Where did a run land? global, spurious, saddle, not_converged or diverged.

A run that stopped on its gradient (or loss) criterion is a stationary point. It is a
global minimum when it matches the teacher up to a permutation of neurons (n = k) or when
its loss is at most `global_loss_tol` (any width). Otherwise the smallest eigenvalue of
its float64 Hessian decides: below -eig_tol it is a saddle, else a spurious local minimum
(Safran & Shamir 2018 check the same sign). Where a neuron is zero the Hessian does not
exist, and the escape-neuron test (`escape.py`) decides instead.
"""

import jax
import numpy as np

from .. import train
from ..landscape import RELU, gaussian
from .escape import min_escape_slope
from .symmetry import NONE, symmetry_type

STATUSES = ("global", "spurious", "saddle", "not_converged", "diverged")


_hessians = jax.jit(
    jax.vmap(lambda w, v, landscape: landscape.hessian(w, v), (0, None, None)),
    static_argnames=("landscape",),
)


# Points per batched Hessian call: a fixed size per cell shape, so one compile per shape;
# fewer for large parameter counts, so a chunk's Hessians stay within ~128 MB.
CHUNK = 32
_CHUNK_ENTRIES = 2**24


def min_eigenvalues(weights, teacher, landscape=RELU):
    """Smallest Hessian eigenvalue of each point (m, ...), in batched calls.

    `teacher` is the landscape's data argument. The Hessians come from JAX; LAPACK's
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
        hessians = np.asarray(_hessians(padded, teacher, landscape))[: len(chunk)]
        found.append(np.linalg.eigvalsh(hessians)[:, 0])
    return np.concatenate(found) if found else np.zeros(0)


def teacher_distance(weights, teacher):
    """max_i |w_i - v_pi(i)| for the best permutation pi, or inf when n != k.

    Near a global minimum each student neuron is close to its own teacher neuron, so the
    nearest-neighbour assignment is the permutation; if it is not one, the point is far.
    """
    if weights.shape[0] != teacher.shape[0]:
        return np.inf
    distance = np.linalg.norm(weights[:, None, :] - teacher[None, :, :], axis=-1)
    nearest = distance.argmin(axis=1)
    if len(set(nearest.tolist())) != len(nearest):
        return np.inf
    return float(distance[np.arange(len(nearest)), nearest].max())


def classify_point(weights, loss, teacher, tolerances, landscape=RELU, min_eig=None):
    """(status, min_eig, decided_by) of one stationary point (n, d).

    `min_eig`, if given, is the point's smallest Hessian eigenvalue (all neurons alive).
    """
    alive = np.linalg.norm(weights, axis=1) > tolerances.zero_tol
    if alive.all():
        if min_eig is None:
            min_eig = float(min_eigenvalues(weights[None], teacher, landscape)[0])
        decided_by = "hessian"
    else:
        # Hessian of the living neurons; a zero neuron must not be able to escape.
        living = weights[alive]
        min_eig = (
            float(min_eigenvalues(living[None], teacher, landscape)[0]) if living.size else np.inf
        )
        decided_by = "escape_neuron"
    if loss <= tolerances.global_loss_tol or teacher_distance(weights, teacher) <= (
        tolerances.match_tol
    ):
        return "global", min_eig, decided_by
    if decided_by == "escape_neuron" and min_escape_slope(
        weights[alive], teacher, landscape.alpha
    ) < -(tolerances.eig_tol):
        return "saddle", min_eig, decided_by
    if min_eig < -tolerances.eig_tol:
        return "saddle", min_eig, decided_by
    return "spurious", min_eig, decided_by


def classify(weights, reason, loss, k, tolerances, landscape=RELU):
    """Statuses and diagnostics for finished runs of one cell.

    Args:
      weights: (m, n, d) final points.
      reason: (m,) stop reasons from `train`.
      loss: (m,) final losses.
      k: teacher width (orthonormal teacher).
      tolerances: a `config.Classify`.
      landscape: the `landscape.Landscape` trained on (ReLU unless given).

    Returns:
      dict of m-long columns: status, min_eig (NaN where the run did not converge),
      decided_by ("hessian", "escape_neuron" or "" when not converged) and symmetry.
    """
    d = weights.shape[2]
    teacher = np.asarray(gaussian.orthonormal_teacher(k, d))
    columns = {"status": [], "min_eig": [], "decided_by": [], "symmetry": []}
    weights = np.asarray(weights)
    converged = np.isin(reason, train.CONVERGED)
    alive = np.all(np.linalg.norm(weights, axis=2) > tolerances.zero_tol, axis=1)
    batched = np.full(len(weights), np.nan)
    batched[converged & alive] = min_eigenvalues(weights[converged & alive], teacher, landscape)
    for w, why, value, eig in zip(weights, reason, loss, batched, strict=True):
        if why in train.CONVERGED:
            status, min_eig, decided_by = classify_point(
                w, value, teacher, tolerances, landscape, None if np.isnan(eig) else eig
            )
            symmetry = symmetry_type(w, tolerances.symmetry_tol)
        else:
            status = "diverged" if why == train.NONFINITE else "not_converged"
            min_eig, decided_by, symmetry = np.nan, "", NONE
        columns["status"].append(status)
        columns["min_eig"].append(min_eig)
        columns["decided_by"].append(decided_by)
        columns["symmetry"].append(symmetry)
    columns["min_eig"] = np.asarray(columns["min_eig"], dtype=float)
    return columns
