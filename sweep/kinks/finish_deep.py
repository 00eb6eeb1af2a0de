"""Finish a stalled deep run onto the exact stationary point of its piece: Newton's
method on the Lagrange conditions of the piece's loss L_s with its kink pairs held on
their kinks (z_p = 0), and an active set that releases pairs where a piece still
descends (`deep.first_order`). The kink pairs are those near zero at a ladder of
relative tolerances and, given the run's step size, those it zig-zags across.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives import Network
from .deep import first_order
from .perturb import losses as _losses
from .pieces import Pairs
from .zigzag import zigzag

MAX_HELD = 64  # the finish holds at most this many pairs on their kinks
NEWTON_STEPS = 40
HALVINGS = 12  # a Newton step is halved at most this often
ROUNDS = 6  # active-set rounds: kink pairs released where a piece descends
MOVE_TOL = 0.1  # the finish may move a point by at most this fraction of its norm (Newton
# steps also move along the rescaling symmetry of each hidden neuron)
KINK_LADDER = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3)


def finish(
    net: Network, theta: np.ndarray, data: tuple, step_size: float = 0.0
) -> tuple[np.ndarray, int] | None:
    """The exact stationary point of the run's piece near theta, its kink pairs held on
    their kinks, and the Newton steps it took; None if Newton does not settle there. The
    kink pairs are those near zero, and (given the run's step size) those that change
    sign within ZIGZAG gradient steps."""
    theta = np.asarray(theta, float)
    base = float(_losses(jnp.asarray(theta)[None], data, net)[0])
    limit = MOVE_TOL * max(1.0, float(np.linalg.norm(theta)))
    flipped = None
    if step_size > 0:
        flipped = zigzag(net, theta, data, step_size)
    used, seen = 0, set()
    for tol in KINK_LADDER:
        for also in (None, flipped) if flipped is not None else (None,):
            pairs = Pairs(net, theta, data, tol, also)
            if pairs.count > MAX_HELD or pairs.on.tobytes() in seen:
                continue
            seen.add(pairs.on.tobytes())
            found, steps = newton_step(pairs, theta, theta, limit)
            used += steps
            if found is None:
                continue
            after = Pairs(net, found, data, 0.0)
            off = ~pairs.on
            if np.any(np.sign(after.z[off]) != np.sign(pairs.z[off])):
                continue  # it left the piece
            value = float(_losses(jnp.asarray(found)[None], data, net)[0])
            if value > base + 1e-12 * max(base, 1):
                continue
            for _ in range(ROUNDS):  # active set: leave kinks where a piece descends
                moved = _leave(net, found, data, value)
                if moved is None:
                    return found, used
                start, keep = moved
                found, steps = newton_step(Pairs(net, start, data, 0.0, keep), start, theta, limit)
                used += steps
                if found is None:
                    break
                value = float(_losses(jnp.asarray(found)[None], data, net)[0])
    return None


def _leave(net, theta, data, value):
    """From a point held on its kinks: if a piece's cone holds a direction u that lowers
    the loss, a step along u that does (and the pairs u keeps on their kinks); else None."""
    pairs = Pairs(net, theta, data, 1e-9)
    if pairs.count == 0:
        return None
    _, residuals, _ = first_order(pairs, theta)
    norm, (residual, oriented) = max(residuals.values(), key=lambda item: item[0])
    if norm <= 1e-12 * max(1.0, np.linalg.norm(theta)):
        return None
    u = -residual / norm
    keep = np.zeros_like(pairs.on)
    stays = np.abs(oriented @ u) <= 1e-9
    keep[tuple(pairs.rows[stays].T)] = True
    size = max(1.0, float(np.linalg.norm(theta)))
    points = theta + np.geomspace(1e-2, 1e-8, 13)[:, None] * size * u
    found = np.asarray(_losses(jnp.asarray(points), data, net))
    best = int(np.argmin(found))
    return (points[best], keep) if found[best] < value else None


def _kkt(pairs: Pairs, point, sides, lam):
    _, gradient, z, jacobian = pairs.piece(point, sides)
    return np.concatenate([gradient + jacobian.T @ lam, z]), jacobian


def newton_step(pairs: Pairs, theta: np.ndarray, centre: np.ndarray, limit: float):
    """Newton on the Lagrange conditions of the piece with every pair's side +1 (on the
    kink the side does not change the loss) and z_pairs = 0 from theta, each step halved
    until the residual of the conditions shrinks. It gives up as soon as an iterate is
    farther than `limit` from `centre`: the finish takes only points that near, and a
    path that leaves the ball counts as not settling there. Most failed solves leave at
    their first step, and following them to NEWTON_STEPS was most of a deep sweep's
    time; in a measured sample no accepted solve had left the ball on its way."""
    sides = np.ones(pairs.count)
    point, lam, dim = theta.copy(), np.zeros(pairs.count), len(theta)
    residual, jacobian = _kkt(pairs, point, sides, lam)
    for step in range(1, NEWTON_STEPS + 1):
        hessian = pairs.hessian(point, sides, lam)
        system = np.block([[hessian, jacobian.T], [jacobian, np.zeros((pairs.count,) * 2)]])
        move = least_squares(system, -residual)
        if move is None:
            return None, step
        for _ in range(HALVINGS):
            trial, trial_lam = point + move[:dim], lam + move[dim:]
            found, found_jacobian = _kkt(pairs, trial, sides, trial_lam)
            if np.all(np.isfinite(found)) and np.linalg.norm(found) < np.linalg.norm(residual):
                break
            move = move / 2
        else:
            return None, step
        point, lam, residual, jacobian = trial, trial_lam, found, found_jacobian
        if np.linalg.norm(point - centre) > limit:
            return None, step
        size = max(1.0, np.abs(point).max())
        if (np.linalg.norm(residual[:dim]) <= 1e-12
                and np.all(np.abs(residual[dim:]) <= 1e-12 * size)):  # fmt: skip
            return point, step
    return None, NEWTON_STEPS


def least_squares(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """The least-squares solution, or None where the system is not finite or LAPACK's SVD
    does not converge on it: a Newton step from there is no step (its trial point would
    not be finite either, so the solve ends where it would have)."""
    if not (np.all(np.isfinite(matrix)) and np.all(np.isfinite(rhs))):
        return None
    try:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]
    except np.linalg.LinAlgError:
        return None


@functools.partial(jax.jit, static_argnames="net")
def _residuals(theta, data, net):
    """Residuals f(x_i) - y_i and their Jacobian (N, p)."""

    def residuals(t):
        return net.apply(t, data[0]) - data[1]

    return residuals(theta), jax.jacfwd(residuals)(theta)


def interpolate(
    net: Network, theta: np.ndarray, data: tuple, loss_tol: float, steps: int = NEWTON_STEPS
) -> tuple[np.ndarray, int] | None:
    """A zero-loss point near theta by Gauss-Newton on the residuals (each step the least
    change -J^+ r, halved until the residual shrinks), and its steps; None unless the loss
    reaches loss_tol. Gradient descent creeps towards such points when the global
    minimum is degenerate (the loss quartic in some directions), where Newton on the
    degenerate Hessian stalls; Gauss-Newton sees the residuals' own rank."""
    point = np.asarray(theta, float).copy()
    limit = MOVE_TOL * max(1.0, float(np.linalg.norm(point)))
    r, jacobian = (np.asarray(a) for a in _residuals(jnp.asarray(point), data, net))
    for step in range(1, steps + 1):
        move = least_squares(jacobian, -r)
        if move is None:
            return None
        for _ in range(HALVINGS):
            trial = point + move
            found, found_jacobian = (
                np.asarray(a) for a in _residuals(jnp.asarray(trial), data, net)
            )
            if np.all(np.isfinite(found)) and np.linalg.norm(found) < np.linalg.norm(r):
                break
            move = move / 2
        else:
            return None
        point, r, jacobian = trial, found, found_jacobian
        if np.linalg.norm(point - theta) > limit:
            return None
        if 0.5 * float(np.mean(r * r)) <= loss_tol:
            return point, step
    return None
