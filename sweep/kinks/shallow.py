"""Exact outcomes of one-hidden-layer networks on finite data (Wu, Simsek & Ged, ICLR 2025).

With `Neurons` notation, r the residuals and sigma's slopes alpha and 1, the loss's
one-sided derivative in a direction u of neuron j's input weights (a_j != 0) is

    a_j (G_j . u + sum_{i in K_j} beta_i max(u . x~_i, 0)),
    G_j = o/N (sum_{i not in K_j} r_i sigma'(z_ij) x~_i + alpha sum_{i in K_j} r_i x~_i),
    beta_i = (1 - alpha) o r_i / N,

K_j the data points on its kink. The point is directionally stationary when every such
derivative is >= 0 and the derivatives in the output weights and bias vanish. When the
x~_i of K_j are linearly independent this holds exactly when a_j G_j = -sum mu_i x~_i with
mu_i between 0 and a_j beta_i: the "subgradient weight" lambda_i = mu_i / (a_j beta_i) lies
in [0, 1]. The margin is min(mu_i, a_j beta_i - mu_i) / |a_j beta_i| over all kink pairs:
min(lambda_i, 1 - lambda_i) when a_j beta_i > 0, and negative when a_j beta_i < 0. Dependent x~_i
are decided by linear programs, one per vertex of the concave part (at most 2^12).
Stationarity is decided to within grad_tol, like the gradient test of smooth points: the
smooth part of the gradient and how far each mu_i lies outside [0, a_j beta_i], as a
gradient (X0^T (mu - clip(mu))), together must not exceed it.

A neuron with a_j = 0 is an escape neuron when the directional derivative D_j(u) above
(without the factor a_j) is not identically zero: moving a_j by -s D_j(u) / C and w~_j by
s u lowers the loss at second order, so the point is a saddle (the paper's converse, for
scalar output). Without escape neurons a stationary point is a local minimum: near it the
loss depends on each neuron only through v_j = a_j w~_j (or w~_j, fixed outputs), and on
every activation pattern it is a convex quadratic of v, whose one-sided derivative at the
point is >= 0 on the pattern's cone. This argument covers ReLU and Leaky ReLU, with and
without biases, trained or fixed (unit) output weights.

`finish_shallow.finish` moves a stalled run onto such a point first.
"""

import itertools

import numpy as np

from ..objectives import Network
from .neurons import Neurons
from .verdict import MINIMUM, NOT_STATIONARY, SADDLE, UNDECIDED, Verdict

MAX_CONCAVE = 12  # dependent kink sets: enumerate at most 2^12 vertices

# Kink tolerances (relative, see `Neurons.kinks`) a finish tries, smallest first.
KINK_LADDER = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3)


def escape_scale(nr: Neurons) -> float:
    return float(nr.o * max(1.0, np.max(np.abs(nr.residuals()))) * max(1.0, np.max(np.abs(nr.x))))


def split_gradient(g: np.ndarray, X0: np.ndarray):
    """g = -X0^T mu + perp, perp orthogonal to the rows of X0; also whether X0's rows are
    independent."""
    mu, _, rank, singular = np.linalg.lstsq(X0.T, -g, rcond=None)
    independent = rank == len(X0) and singular[-1] > 1e-10 * singular[0]
    return mu, g + X0.T @ mu, independent


def kink_parts(nr: Neurons, on_kink: np.ndarray):
    """Per neuron: (G_j, beta over its kink points) without the factor a_j."""
    n_points = len(nr.y)
    r, z, alpha = nr.residuals(), nr.z, nr.alpha
    slope = np.where(z > 0, 1.0, alpha) * ~on_kink
    G = nr.o / n_points * ((r[:, None] * slope).T @ nr.x)
    G += alpha * nr.o / n_points * ((r[:, None] * on_kink).T @ nr.x)
    beta = (1 - alpha) * nr.o / n_points * r
    return G, beta


def _dependent_ok(g: np.ndarray, B: np.ndarray, X0: np.ndarray, tol: float) -> bool | None:
    """G.u + sum B_i max(u.x_i, 0) >= 0 for all u, with dependent x_i: for every vertex s of
    the concave part, some lambda in [0, 1]^{B>0} makes g + sum_{B<0} s_i B_i x_i +
    sum_{B>0} lambda_i B_i x_i vanish. None if there are too many vertices."""
    from scipy.optimize import linprog  # here: scipy.optimize takes ~0.3 s to import

    pos, neg = B > 0, B < 0
    if neg.sum() > MAX_CONCAVE:
        return None
    columns = (B[pos, None] * X0[pos]).T  # (D, p)
    dim, count = columns.shape
    for vertex in itertools.product((0.0, 1.0), repeat=int(neg.sum())):
        target = -(g + np.asarray(vertex) @ (B[neg, None] * X0[neg]))
        # min |columns lambda - target|_1: variables lambda, e+ and e-.
        cost = np.concatenate([np.zeros(count), np.ones(2 * dim)])
        equality = np.hstack([columns, -np.eye(dim), np.eye(dim)])
        bounds = [(0, 1)] * count + [(0, None)] * (2 * dim)
        found = linprog(cost, A_eq=equality, b_eq=target, bounds=bounds, method="highs")
        if not found.success or found.fun > tol:
            return False
    return True


def _escape_direction(g: np.ndarray, beta: np.ndarray, X0: np.ndarray, tol: float):
    """A unit u with D(u) = g.u + sum beta_i max(u.x_i, 0) != 0, and D(u); None if D = 0."""

    def slope(u):
        return float(g @ u + beta @ np.maximum(X0 @ u, 0.0))

    candidates = [g] if len(X0) == 0 else []
    if len(X0):
        mu, perp, independent = split_gradient(g, X0)
        candidates = [perp]
        if independent:
            dual = np.linalg.pinv(X0)  # (D, m): X0 dual[:, i] = e_i
            candidates += [dual[:, i] * sign for i in range(len(X0)) for sign in (1, -1)]
        else:
            rng = np.random.default_rng(0)
            candidates += list(rng.standard_normal((2000, X0.shape[1])))
            candidates += list(X0) + list(-X0)
    best = None
    for u in candidates:
        size = np.linalg.norm(u)
        if size == 0:
            continue
        value = slope(u / size)
        if abs(value) > tol and (best is None or abs(value) > abs(best[1])):
            best = (u / size, value)
    return best


def verdict(
    net: Network,
    theta: np.ndarray,
    data: tuple,
    grad_tol: float,
    kink_tol: float = 1e-9,
    zero_tol: float = 1e-8,
) -> Verdict:
    """Classify one point of a depth-2 network by the piecewise conditions."""
    nr = Neurons.of(net, theta, data)
    on_kink = nr.kinks(kink_tol)
    G, beta = kink_parts(nr, on_kink)
    r, z, n_points = nr.residuals(), nr.z, len(nr.y)
    gradient = []
    if nr.trained:
        act = np.where(z > 0, z, nr.alpha * z)
        gradient.append(nr.o / n_points * (act.T @ r))
    if nr.has_c:
        gradient.append([np.mean(r)])
    zero = nr.trained & (np.abs(nr.a) <= zero_tol)
    plain = ~zero & ~on_kink.any(axis=0)
    gradient.append((nr.a[plain, None] * G[plain]).ravel())
    margins, escapes, undecided, direction, best = [], [], [], None, 0.0
    excess, failed = [np.zeros(0)], False
    tol = escape_scale(nr) * 1e-9
    for j in np.flatnonzero(~plain):
        rows = on_kink[:, j]
        X0, b = nr.x[rows], beta[rows]
        if zero[j]:
            found = _escape_direction(G[j], b, X0, tol)
            if found is not None:
                escapes.append(j)
                if abs(found[1]) > best:
                    best, direction = abs(found[1]), _escape_move(net, nr, j, *found)
            continue
        g, B = nr.a[j] * G[j], nr.a[j] * b
        mu, perp, independent = split_gradient(g, X0)
        gradient.append(perp)
        if independent:
            # mu_i must lie in [0, B_i]: min(mu_i, B_i - mu_i) / |B_i| is >= 0 exactly then.
            for m_i, b_i in zip(mu, B, strict=True):
                if b_i == 0:
                    margins.append(0.0 if abs(m_i) <= tol else -np.inf)
                else:
                    margins.append(min(m_i, b_i - m_i) / abs(b_i))
            # How far outside, in gradient units: stationary to within grad_tol, as the
            # gradient test of smooth points.
            excess.append(X0.T @ (mu - np.clip(mu, np.minimum(B, 0), np.maximum(B, 0))))
        else:
            ok = _dependent_ok(g, B, X0, tol=max(grad_tol, tol))
            if ok is None:
                undecided.append(j)
            margins.append(0.0 if ok in (True, None) else -np.inf)
            failed |= ok is False
    smooth = float(np.linalg.norm(np.concatenate([np.ravel(p) for p in gradient])))
    outside = float(np.linalg.norm(np.concatenate([np.ravel(p) for p in excess])))
    size = float(np.hypot(smooth, outside))
    margin = float(min(margins)) if margins else float("nan")
    kinks = int(on_kink.sum())
    common = dict(kinks=kinks, margin=margin, gradient=size, escape=len(escapes))
    if size > grad_tol or failed:
        why = (f"smooth part of the gradient {smooth:.2e} > {grad_tol:g}" if smooth > grad_tol
               else f"a subgradient weight is {-margin:.2e} outside [0, 1]")  # fmt: skip
        return Verdict(NOT_STATIONARY, decided_by="kink", reason=why, **common)
    if escapes:
        return Verdict(SADDLE, decided_by="escape_neuron", direction=direction,
                       reason=f"{len(escapes)} escape neuron(s), e.g. neuron {escapes[0]}",
                       **common)  # fmt: skip
    if undecided:
        why = f"neuron {undecided[0]}: over {MAX_CONCAVE} dependent kink points of one sign"
        return Verdict(UNDECIDED, decided_by="plateau", reason=why, **common)
    why = "stationary, no escape neuron" + (f", {kinks} kink pair(s)" if kinks else ", smooth")
    return Verdict(MINIMUM, decided_by="kink", reason=why, **common)


def _escape_move(net, nr, j, u, slope):
    """A unit direction in theta along which an escape neuron lowers the loss at 2nd order."""
    act = np.where(nr.z[:, j] > 0, nr.z[:, j], nr.alpha * nr.z[:, j])
    curvature = nr.o**2 * float(np.mean(act * act))
    s = -slope / curvature if curvature > 0 else -np.sign(slope)
    move = Neurons(**{**vars(nr), "a": np.zeros_like(nr.a), "w": np.zeros_like(nr.w), "c": 0.0})
    move.a[j], move.w[j] = s, u
    theta = move.theta(net)
    return theta / np.linalg.norm(theta)
