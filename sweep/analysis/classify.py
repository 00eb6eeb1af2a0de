"""Where did a run land? global, spurious, saddle, not_converged or diverged.

A run that stopped on its gradient (or loss) criterion is a stationary point. It is a
global minimum when it matches the teacher up to a permutation of neurons (n = k) or when
its loss is at most `global_loss_tol` (any width). Otherwise the smallest eigenvalue of
its float64 Hessian decides: below -eig_tol it is a saddle, else a spurious local minimum
(Safran & Shamir 2018 check the same sign).
"""

import jax
import numpy as np

from .. import train
from ..landscape import gaussian

STATUSES = ("global", "spurious", "saddle", "not_converged", "diverged")

_min_eigenvalue = jax.jit(gaussian.min_hessian_eigenvalue)


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


def classify(weights, reason, loss, k, tolerances):
    """Statuses and smallest Hessian eigenvalues for finished runs of one cell.

    Args:
      weights: (m, n, d) final points.
      reason: (m,) stop reasons from `train`.
      loss: (m,) final losses.
      k: teacher width (orthonormal teacher).
      tolerances: a `config.Classify`.

    Returns:
      (status, min_eigenvalue): a list of m strings and an (m,) float64 array, NaN where
      the run did not converge.
    """
    d = weights.shape[2]
    teacher = np.asarray(gaussian.orthonormal_teacher(k, d))
    status = []
    min_eig = np.full(len(reason), np.nan)
    for i, (w, why, value) in enumerate(zip(weights, reason, loss, strict=True)):
        if why == train.NONFINITE:
            status.append("diverged")
            continue
        if why == train.MAX_STEPS:
            status.append("not_converged")
            continue
        min_eig[i] = float(_min_eigenvalue(w, teacher))
        if value <= tolerances.global_loss_tol or (
            teacher_distance(w, teacher) <= tolerances.match_tol
        ):
            status.append("global")
        elif min_eig[i] < -tolerances.eig_tol:
            status.append("saddle")
        else:
            status.append("spurious")
    return status, min_eig
