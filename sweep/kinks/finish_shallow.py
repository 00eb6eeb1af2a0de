"""Finish a stalled depth-2 run onto the exact stationary point of its piece.

On a fixed activation pattern the network is linear in v_j = a_j w~_j (w~_j itself for
fixed output weights), so the loss restricted to the pattern, with the kink pairs held on
their kinks (v_j . x~_i = 0), is a linear least-squares problem: its solutions nearest
the run's point (least change of v) are the piece's stationary points. A neuron whose
output weight is tiny against its input weights keeps w~_j (projected onto its kinks)
and solves for a_j alone, so that a run approaching an escape-neuron saddle lands on that
saddle rather than in another piece. Each neuron's v_j is mapped back keeping
a_j^2 - |w~_j|^2, which gradient flow conserves.

Active set: pairs the solution moves across join the kink set; pairs whose subgradient
weight falls outside [0, 1] leave it, on the side that lowers the loss. The finish fails
(None) if this does not settle, or if the point would move far or the loss would rise.
"""

import itertools

import numpy as np

from ..objectives import Network
from .neurons import Neurons
from .shallow import KINK_LADDER, escape_scale, kink_parts, split_gradient
from .zigzag import zigzag

ROUNDS = 8  # active-set rounds per kink tolerance
SMALL_OUTPUT = 1e-3  # |a_j| below this times |w~_j|: solve for a_j with w~_j fixed
MOVE_TOL = 1e-2  # the finish may move a point by at most this fraction of its norm


def null_basis(rows: np.ndarray, dim: int, rtol: float = 1e-12) -> np.ndarray:
    """Orthonormal basis (dim, k) of the complement of the rows' span (singular values
    below rtol times the largest count as zero)."""
    if len(rows) == 0:
        return np.eye(dim)
    # Many rows (a neuron with hundreds of kink points): no (m, m) factor is needed.
    _, singular, vt = np.linalg.svd(rows, full_matrices=len(rows) < dim)
    rank = int(np.sum(singular > rtol * max(singular[0], 1e-300)))
    return vt[rank:].T


def _solve(nr: Neurons, on_kink: np.ndarray, side: np.ndarray, small: np.ndarray) -> Neurons:
    """The least-change least-squares solution on the pattern `side` (+1 / -1 per pair, for
    pairs off the kink set) with the kink pairs on their kinks."""
    from scipy.linalg import block_diag  # here: only finishes on data need scipy

    n_points, dim = nr.x.shape
    slope = np.where(side > 0, 1.0, nr.alpha) * ~on_kink
    columns, start, bases, metrics = [], [], [], []
    w = nr.w.copy()
    for j in range(len(nr.a)):
        basis = null_basis(nr.x[on_kink[:, j]], dim)
        bases.append(basis)
        if small[j]:
            w[j] = basis @ (basis.T @ w[j])
            columns.append((nr.o * slope[:, j] * (nr.x @ w[j]))[:, None])
            start.append([nr.a[j]])
            metrics.append(np.ones((1, 1)))
        else:
            columns.append(nr.o * (slope[:, j, None] * nr.x) @ basis)
            start.append(basis.T @ (nr.a[j] * w[j]))
            metrics.append(_flow_metric(nr, j, basis))
    if nr.has_c:
        columns.append(np.ones((n_points, 1)))
        start.append([nr.c])
        metrics.append(np.ones((1, 1)))
    design, u0 = np.hstack(columns), np.concatenate([np.ravel(s) for s in start])
    # The least change in gradient flow's own metric: the solution gradient descent
    # approaches along the piece's flat directions, to first order.
    root = block_diag(*metrics)
    eta, *_ = np.linalg.lstsq(design @ root, nr.y - design @ u0, rcond=None)
    u = u0 + root @ eta
    out = Neurons(**{**vars(nr), "a": nr.a.copy(), "w": w})
    offset = 0
    for j, basis in enumerate(bases):
        if small[j]:
            out.a[j] = u[offset]
            offset += 1
            continue
        v = basis @ u[offset : offset + basis.shape[1]]
        offset += basis.shape[1]
        if not nr.trained:
            out.w[j] = v
            continue
        # a^2 - |w|^2 = delta and a |w| = |v|, a keeping its sign.
        delta, size = nr.a[j] ** 2 - nr.w[j] @ nr.w[j], np.linalg.norm(v)
        a = np.sqrt(0.5 * (delta + np.hypot(delta, 2 * size)))
        a = np.copysign(a, nr.a[j]) if nr.a[j] != 0 else a
        out.a[j] = a
        out.w[j] = v / a if a != 0 else nr.w[j]
    if nr.has_c:
        out.c = float(u[offset])
    return out


def _flow_metric(nr: Neurons, j: int, basis: np.ndarray) -> np.ndarray:
    """Square root of the metric gradient flow induces on v_j = a_j w~_j (in the basis):
    dv/dt = -(a_j^2 I + w~_j w~_j^T) grad_v L for a trained output weight, the identity
    for a fixed one."""
    if not nr.trained:
        return np.eye(basis.shape[1])
    metric = basis.T @ (nr.a[j] ** 2 * np.eye(len(nr.w[j])) + np.outer(nr.w[j], nr.w[j])) @ basis
    values, vectors = np.linalg.eigh(metric)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def _violations(nr: Neurons, on_kink: np.ndarray, tol: float) -> np.ndarray:
    """(N, n): +1 / -1 for kink pairs whose weight lies above / below [0, 1], else 0."""
    G, beta = kink_parts(nr, on_kink)
    found = np.zeros(on_kink.shape, int)
    for j in np.flatnonzero(on_kink.any(axis=0)):
        rows = np.flatnonzero(on_kink[:, j])
        mu, _, _ = split_gradient(nr.a[j] * G[j], nr.x[rows])
        bound = nr.a[j] * beta[rows]
        scale = np.maximum(np.abs(bound), tol * escape_scale(nr))
        low, high = -mu / scale, (mu - bound) / scale
        worst = np.maximum(low, high)
        bad = worst > 1e-9
        found[rows[bad], j] = np.where(high > low, 1, -1)[bad]
    return found


def finish(
    net: Network, theta: np.ndarray, data: tuple, step_size: float = 0.0
) -> tuple[np.ndarray, int] | None:
    """The exact stationary point of the run's piece near theta and the least-squares
    solves it took, or None. Given the run's step size, the pairs it zig-zags across
    (`zigzag.py`) are tried on the kink set too."""
    start = Neurons.of(net, theta, data)
    z0, scale = start.z, start.scale()
    small = start.trained & (np.abs(start.a) < SMALL_OUTPUT * np.linalg.norm(start.w, axis=1))
    loss0, tried = start.loss(), set()
    limit = MOVE_TOL * max(1.0, float(np.linalg.norm(theta)))
    flipped = [None]
    if step_size > 0:
        flipped.append(zigzag(net, theta, data, step_size)[0])
    for tol, also in itertools.product(KINK_LADDER, flipped):
        on_kink = np.abs(z0) <= tol * scale
        if also is not None:
            on_kink = on_kink | also
        side = np.where(z0 > 0, 1, -1)
        for _ in range(ROUNDS):
            key = (on_kink.tobytes(), side.tobytes())
            if key in tried:
                break
            tried.add(key)
            point = _solve(start, on_kink, side, small)
            z = point.z
            crossed = ~on_kink & (np.sign(z) != side)
            if crossed.any():
                on_kink = on_kink | crossed
                continue
            release = _violations(point, on_kink, tol=1e-12)
            if release.any():
                on_kink = on_kink & (release == 0)
                side = np.where(release != 0, release, side)
                continue
            found = point.theta(net)
            if (np.linalg.norm(found - theta) <= limit
                    and point.loss() <= loss0 + 1e-12 * max(1.0, loss0)):  # fmt: skip
                return found, len(tried)
            break
    return None
