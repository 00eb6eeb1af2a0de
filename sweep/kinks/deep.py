"""Exact outcomes of deeper networks on finite data, piece by piece (Liu 2021).

A kink pair p is a (layer, data point, neuron) whose pre-activation z_p is 0. Giving every
activation a fixed slope (1 or alpha; `Network.apply` with slopes) makes the loss a smooth
polynomial L_s, a "piece". Near a point with m kink pairs the loss is, in each of the 2^m
sign choices s of the pairs, L_s on the cone of directions {u: s_p J_p u >= 0} (J_p the
gradient of z_p on that piece). The point is a local minimum when it is one of every
piece restricted to its cone, which `verdict` checks by enumeration (m <= MAX_PAIRS):

* first order: the piece's gradient is sum_p lambda_p s_p J_p with every lambda_p >= 0
  (nonnegative least squares; otherwise a direction of the cone lowers the loss);
* second order: the Hessian of the Lagrangian L_s - sum_p lambda_p s_p z_p is positive
  semidefinite, to eig_tol, on the directions that keep the pairs with lambda_p > 0 on
  their kinks. A direction of negative curvature there is tried on the loss itself: if a
  step along it lowers the loss the point is a saddle, else the verdict is undecided.

The margin of a pair is min(lambda_s, lambda_s') / (lambda_s + lambda_s') over the pieces
s, s' that differ only in its side: for one hidden layer with independent kink points it
is the margin of `shallow` (how far its subgradient weight is from the ends of [0, 1]).

`finish` moves a stalled run onto the exact stationary point of its piece: Newton's method
on the Lagrange conditions of L_s with the kink pairs held on their kinks (z_p = 0).
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import nnls

from ..landscape import Network
from .finish_shallow import null_basis
from .perturb import losses as _losses
from .perturb import perturb
from .verdict import MINIMUM, NOT_STATIONARY, SADDLE, UNDECIDED, Verdict
from .zigzag import zigzag

MAX_PAIRS = 12  # enumerate the pieces of at most this many kink pairs
MAX_HELD = 64  # the finish holds at most this many pairs on their kinks
NEWTON_STEPS = 40
HALVINGS = 12  # a Newton step is halved at most this often
ROUNDS = 6  # active-set rounds: kink pairs released where a piece descends
MOVE_TOL = 0.1  # the finish may move a point by at most this fraction of its norm (Newton
# steps also move along the rescaling symmetry of each hidden neuron)
KINK_LADDER = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3)
TRY_STEPS = (1e-1, 1e-2, 1e-3, 1e-4)  # steps (relative to |theta|) along a negative curvature


def _padded(count: int) -> int:
    """Row counts are padded to powers of two, so few shapes are compiled."""
    return max(4, 1 << (max(count, 1) - 1).bit_length())


@functools.partial(jax.jit, static_argnames="net")
def _piece(theta, data, slopes, rows, net):
    """Loss, gradient, the picked pre-activations and their Jacobian on one piece."""
    inputs, targets = data

    def loss(t):
        residual = net.apply(t, inputs, slopes) - targets
        return 0.5 * jnp.mean(residual * residual)

    def picked(t):
        z = jnp.stack(net.preactivations(t, inputs, slopes))
        return z[rows[:, 0], rows[:, 1], rows[:, 2]]

    value, gradient = jax.value_and_grad(loss)(theta)
    return value, gradient, picked(theta), jax.jacrev(picked)(theta)


@functools.partial(jax.jit, static_argnames="net")
def _lagrangian_hessian(theta, data, slopes, rows, weights, net):
    """Hessian of L_s + weights . z_rows on one piece."""
    inputs, targets = data

    def lagrangian(t):
        residual = net.apply(t, inputs, slopes) - targets
        z = jnp.stack(net.preactivations(t, inputs, slopes))
        return 0.5 * jnp.mean(residual * residual) + weights @ z[rows[:, 0], rows[:, 1], rows[:, 2]]

    return jax.hessian(lagrangian)(theta)


class Pairs:
    """The kink pairs of a point at a relative tolerance, and the pieces around it."""

    def __init__(self, net: Network, theta: np.ndarray, data: tuple, tol: float, also=None):
        self.net, self.data = net, data
        z = np.stack([np.asarray(layer) for layer in net.preactivations(theta, data[0])])
        self.z = z
        self.on = np.abs(z) <= tol * _scales(net, theta, data[0], z)
        if also is not None:
            self.on |= also
        self.rows = np.argwhere(self.on)  # (m, 3): layer, point, neuron
        self.base = np.where(z > 0, 1.0, net.alpha)
        self.groups = self._groups()

    def _groups(self) -> list[np.ndarray]:
        """Pairs that share one side. Under ReLU a point whose previous layer is off (every
        pre-activation there < 0, none on a kink) reaches neuron j with z = b_j alone:
        all such pairs of that neuron are one constraint, on one side together."""
        keys = []
        for layer, point, neuron in self.rows:
            previous = self.z[layer - 1, point] if layer else None
            shared = (layer and self.net.alpha == 0 and self.net.biases
                      and np.all(previous < 0) and not self.on[layer - 1, point].any())  # fmt: skip
            keys.append((layer, -1, neuron) if shared else (layer, point, neuron))
        order = {}
        for index, key in enumerate(keys):
            order.setdefault(key, []).append(index)
        return [np.array(members) for members in order.values()]

    @property
    def count(self) -> int:
        return len(self.rows)

    def slopes(self, sides: np.ndarray) -> tuple:
        """The slopes of the piece where kink pair p is on side sides[p] (+1 / -1)."""
        slopes = self.base.copy()
        layer, point, neuron = self.rows.T
        slopes[layer, point, neuron] = np.where(sides > 0, 1.0, self.net.alpha)
        return tuple(jnp.asarray(s) for s in slopes)

    def padded_rows(self) -> jnp.ndarray:
        rows = np.zeros((_padded(self.count), 3), int)
        rows[: self.count] = self.rows
        return jnp.asarray(rows)

    def piece(self, theta, sides):
        """(loss, gradient, z of the pairs, their Jacobian (m, p)) on a piece."""
        value, gradient, z, jacobian = _piece(
            jnp.asarray(theta), self.data, self.slopes(sides), self.padded_rows(), self.net
        )
        m = self.count
        return float(value), np.asarray(gradient), np.asarray(z)[:m], np.asarray(jacobian)[:m]

    def hessian(self, theta, sides, multipliers):
        weights = np.zeros(_padded(self.count))
        weights[: self.count] = multipliers
        found = _lagrangian_hessian(
            jnp.asarray(theta), self.data, self.slopes(sides), self.padded_rows(),
            jnp.asarray(weights), self.net,
        )  # fmt: skip
        return np.asarray(found)


def _scales(net: Network, theta, inputs, z) -> np.ndarray:
    """|(w_j, b_j)| |(h_i, 1)| per layer, point and neuron: what z_ij is measured against."""
    p = {key: np.asarray(value) for key, value in net.unflatten(jnp.asarray(theta)).items()}
    h, found = np.asarray(inputs), []
    for layer in range(1, net.depth):
        weight = p[f"W{layer}"] / (np.sqrt(p[f"W{layer}"].shape[1]) if net.ntk else 1.0)
        rows = np.sum(weight**2, axis=1) + (p[f"b{layer}"] ** 2 if net.biases else 0.0)
        found.append(np.outer(np.sqrt(np.sum(h**2, axis=1) + 1.0), np.sqrt(rows)))
        zl = z[layer - 1]
        h = np.where(zl > 0, zl, net.alpha * zl)
    return np.stack(found)


def verdict(
    net: Network, theta: np.ndarray, data: tuple, grad_tol: float, eig_tol: float,
    kink_tol: float = 1e-9,
) -> Verdict | None:  # fmt: skip
    """Classify a point of a deep network on its kinks; None if it has none (smooth: the
    Hessian test decides)."""
    theta = np.asarray(theta, float)
    pairs = Pairs(net, theta, data, kink_tol)
    m = pairs.count
    if m == 0:
        return None
    groups = pairs.groups
    enumerated = len(groups) <= MAX_PAIRS
    base = float(_losses(jnp.asarray(theta)[None], data, net)[0])
    multipliers, residuals, largest = _first_order(pairs, theta)
    worst = max(norm for norm, _ in residuals.values())
    common = dict(kinks=m, gradient=float(worst))
    if worst > grad_tol:
        return Verdict(NOT_STATIONARY, margin=-worst / max(largest, 1e-300), escape=0,
                       decided_by="kink",
                       reason=f"a piece's gradient is {worst:.2e} outside its cone's dual",
                       **common)  # fmt: skip
    if not enumerated:  # stationary on the two outer pieces; the rest is a search
        return _search(net, theta, data, m, len(groups))
    margin = _margin(multipliers, groups)
    undecided = None
    for lam, jacobian, sides in multipliers.values():
        tight = lam > 1e-9 * max(1.0, float(lam.max(initial=0.0)))
        basis = null_basis(jacobian[tight], len(theta), rtol=1e-10)
        if basis.shape[1] == 0:
            continue
        hessian = pairs.hessian(theta, sides, -sides * lam)
        values, vectors = np.linalg.eigh(basis.T @ hessian @ basis)
        if values[0] >= -eig_tol:
            continue
        direction = basis @ vectors[:, 0]
        drop = _descent(net, theta, data, base, direction)
        if drop is not None:
            return Verdict(SADDLE, margin=margin, escape=0, decided_by="kink",
                           direction=drop, reason=f"negative curvature {values[0]:.2e} "
                           "on a piece lowers the loss", **common)  # fmt: skip
        undecided = f"negative curvature {values[0]:.2e} on a piece, no descent on a line"
    if undecided:
        return Verdict(UNDECIDED, margin=margin, escape=0, decided_by="plateau",
                       reason=undecided, **common)  # fmt: skip
    return Verdict(MINIMUM, margin=margin, escape=0, decided_by="kink",
                   reason=f"every piece of {m} kink pair(s) is stationary and convex",
                   **common)  # fmt: skip


def _first_order(pairs: Pairs, theta: np.ndarray):
    """Per piece (every piece of at most MAX_PAIRS groups, else the two outer ones): the
    multipliers lambda >= 0 nearest to g = sum lambda_p s_p J_p, and the residual
    g - sum lambda_p s_p J_p (its norm, and the residual itself: minus it is a direction of
    the piece's cone that lowers the loss). Also the largest piece gradient."""
    groups, m = pairs.groups, pairs.count
    choices = (
        itertools.product((1, -1), repeat=len(groups)) if len(groups) <= MAX_PAIRS
        else [(1,) * len(groups), (-1,) * len(groups)]
    )  # fmt: skip
    multipliers, residuals, largest = {}, {}, 0.0
    for choice in choices:
        sides = np.empty(m)
        for group, side in zip(groups, choice, strict=True):
            sides[group] = side
        _, gradient, _, jacobian = pairs.piece(theta, sides)
        oriented = sides[:, None] * jacobian
        lam, norm = nnls(oriented.T, gradient, maxiter=50 * m)
        multipliers[choice] = (lam, jacobian, sides)
        residuals[choice] = (norm, (gradient - oriented.T @ lam, oriented))
        largest = max(largest, float(np.linalg.norm(gradient)))
    return multipliers, residuals, largest


def _margin(multipliers: dict, groups: list) -> float:
    found = np.inf
    for choice, (lam, _, _) in multipliers.items():
        for g, members in enumerate(groups):
            if choice[g] < 0:
                continue
            other = tuple(-s if h == g else s for h, s in enumerate(choice))
            up, down = lam[members].sum(), multipliers[other][0][members].sum()
            found = min(found, min(up, down) / (up + down) if up + down else 0.0)
    return float(found)


def _descent(net, theta, data, base, direction):
    """The unit direction along which a step lowers the loss by more than 1e-12
    (relative), or None."""
    size = max(1.0, float(np.linalg.norm(theta)))
    unit = direction / np.linalg.norm(direction)
    steps = np.array([sign * t * size * unit for t in TRY_STEPS for sign in (1, -1)])
    losses = np.asarray(_losses(jnp.asarray(theta + steps), data, net))
    best = int(np.argmin(losses))
    if losses[best] < base - 1e-12 * max(abs(base), 1e-300):
        return steps[best] / np.linalg.norm(steps[best])
    return None


def _search(net, theta, data, m, groups, trials=2000, seed=0):
    """Too many pairs to enumerate: a saddle if random small steps find descent."""
    found = perturb(net, theta, data, trials=trials, seed=seed)
    common = dict(kinks=m, margin=float("nan"), gradient=float("nan"), escape=0)
    if found.drop > 1e-12:
        return Verdict(SADDLE, decided_by="kink", direction=found.direction,
                       reason=f"{m} kink pairs; random steps lower the loss", **common)  # fmt: skip
    return Verdict(UNDECIDED, decided_by="plateau",
                   reason=f"{m} kink pairs in {groups} groups: more than {MAX_PAIRS} to "
                   "enumerate, no descent found", **common)  # fmt: skip


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
            found, steps = _newton(pairs, theta)
            used += steps
            if found is None or np.linalg.norm(found - theta) > limit:
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
                found, steps = _newton(Pairs(net, start, data, 0.0, keep), start)
                used += steps
                if found is None or np.linalg.norm(found - theta) > limit:
                    break
                value = float(_losses(jnp.asarray(found)[None], data, net)[0])
    return None


def _leave(net, theta, data, value):
    """From a point held on its kinks: if a piece's cone holds a direction u that lowers
    the loss, a step along u that does (and the pairs u keeps on their kinks); else None."""
    pairs = Pairs(net, theta, data, 1e-9)
    if pairs.count == 0:
        return None
    _, residuals, _ = _first_order(pairs, theta)
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


def _newton(pairs: Pairs, theta: np.ndarray):
    """Newton on the Lagrange conditions of the piece with every pair's side +1 (on the
    kink the side does not change the loss) and z_pairs = 0, each step halved until the
    residual of the conditions shrinks."""
    sides = np.ones(pairs.count)
    point, lam, dim = theta.copy(), np.zeros(pairs.count), len(theta)
    residual, jacobian = _kkt(pairs, point, sides, lam)
    for step in range(1, NEWTON_STEPS + 1):
        hessian = pairs.hessian(point, sides, lam)
        system = np.block([[hessian, jacobian.T], [jacobian, np.zeros((pairs.count,) * 2)]])
        move, *_ = np.linalg.lstsq(system, -residual, rcond=None)
        for _ in range(HALVINGS):
            trial, trial_lam = point + move[:dim], lam + move[dim:]
            found, found_jacobian = _kkt(pairs, trial, sides, trial_lam)
            if np.all(np.isfinite(found)) and np.linalg.norm(found) < np.linalg.norm(residual):
                break
            move = move / 2
        else:
            return None, step
        point, lam, residual, jacobian = trial, trial_lam, found, found_jacobian
        size = max(1.0, np.abs(point).max())
        if (np.linalg.norm(residual[:dim]) <= 1e-12
                and np.all(np.abs(residual[dim:]) <= 1e-12 * size)):  # fmt: skip
            return point, step
    return None, NEWTON_STEPS
