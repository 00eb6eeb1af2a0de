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
"""

import itertools

import jax.numpy as jnp
import numpy as np

from ..objectives import Network
from .finish_shallow import null_basis
from .perturb import losses as _losses
from .perturb import perturb
from .pieces import Pairs
from .verdict import MINIMUM, NOT_STATIONARY, SADDLE, UNDECIDED, Verdict

MAX_PAIRS = 12  # enumerate the pieces of at most this many kink groups
TRY_STEPS = (1e-1, 1e-2, 1e-3, 1e-4)  # steps (relative to |theta|) along a negative curvature


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
    multipliers, residuals, largest = first_order(pairs, theta)
    worst = max(norm for norm, _ in residuals.values())
    common = dict(kinks=m, gradient=float(worst))
    if worst > grad_tol:
        return Verdict(NOT_STATIONARY, margin=-worst / max(largest, 1e-300), escape=0,
                       decided_by="kink",
                       reason=f"a piece's gradient is {worst:.2e} outside its cone's dual",
                       **common)  # fmt: skip
    if not enumerated:  # stationary on the two outer pieces
        found = _decoupled(net, pairs, theta, data, base, grad_tol, eig_tol)
        return found if found is not None else _search(net, theta, data, m, len(groups))
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


def _decoupled(net, pairs, theta, data, base, grad_tol, eig_tol) -> Verdict | None:
    """Many kink groups that do not feed one another (no data point has kink pairs in two
    layers) with independent gradients J_g: the one-sided derivative is then
    g_- . u + sum_g c_g max(J_g u, 0), as for one hidden layer (g_- the gradient with every
    group on its lower side), and the conditions hold group by group: g_- = -sum mu_g J_g
    with mu_g between 0 and c_g, then the Hessian of the Lagrangian L_- + sum mu_g z_g on
    the directions that keep the groups on their kinks. None where this does not apply."""
    layers = {}
    for layer, point, _ in pairs.rows:
        layers.setdefault(point, set()).add(layer)
    if any(len(found) > 1 for found in layers.values()):
        return None
    m, first = pairs.count, np.array([group[0] for group in pairs.groups])
    _, low, _, jacobian = pairs.piece(theta, -np.ones(m))
    _, high, _, _ = pairs.piece(theta, np.ones(m))
    rows = jacobian[first]
    singular = np.linalg.svd(rows, compute_uv=False)
    if singular[-1] <= 1e-10 * singular[0]:
        return None
    c, *_ = np.linalg.lstsq(rows.T, high - low, rcond=None)
    mu, *_ = np.linalg.lstsq(rows.T, -low, rcond=None)
    outside = mu - np.clip(mu, np.minimum(c, 0), np.maximum(c, 0))
    size = float(np.hypot(np.linalg.norm(low + rows.T @ mu), np.linalg.norm(rows.T @ outside)))
    margins = np.where(c != 0, np.minimum(mu, c - mu) / np.where(c != 0, np.abs(c), 1), 0.0)
    common = dict(kinks=m, margin=float(margins.min()), gradient=size, escape=0)
    if size > grad_tol:
        return Verdict(NOT_STATIONARY, decided_by="kink",
                       reason=f"a kink group's subgradient lies {size:.2e} outside its range",
                       **common)  # fmt: skip
    weights = np.zeros(m)
    weights[first] = mu
    strict = (mu > 1e-9 * np.abs(c)) & (c - mu > 1e-9 * np.abs(c))
    basis = null_basis(rows[strict], len(theta), rtol=1e-10)
    if basis.shape[1]:
        hessian = pairs.hessian(theta, -np.ones(m), weights)
        values, vectors = np.linalg.eigh(basis.T @ hessian @ basis)
        if values[0] < -eig_tol:
            drop = _descent(net, theta, data, base, basis @ vectors[:, 0])
            if drop is None:
                return Verdict(UNDECIDED, decided_by="plateau", reason=f"negative curvature "
                               f"{values[0]:.2e} along {len(first)} kink groups, no descent "
                               "on a line", **common)  # fmt: skip
            return Verdict(SADDLE, decided_by="kink", direction=drop, reason="negative "
                           f"curvature {values[0]:.2e} along the kinks lowers the loss",
                           **common)  # fmt: skip
    return Verdict(MINIMUM, decided_by="kink", reason=f"{len(first)} independent kink "
                   "groups, each within its range, convex along the kinks", **common)  # fmt: skip


def first_order(pairs: Pairs, theta: np.ndarray):
    """Per piece (every piece of at most MAX_PAIRS groups, else the two outer ones): the
    multipliers lambda >= 0 nearest to g = sum lambda_p s_p J_p, and the residual
    g - sum lambda_p s_p J_p (its norm, and the residual itself: minus it is a direction of
    the piece's cone that lowers the loss). Also the largest piece gradient."""
    from scipy.optimize import nnls  # here: scipy.optimize takes ~0.3 s to import

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
