"""One neuron more: whether a minimum W of n neurons stays a minimum of n + 1 with the new
neuron at zero (n = k, or wider students: nothing below assumes n = k).

Adding a neuron t v (fixed output weight 1) to the network W changes F exactly by a
quadratic in t, since the new unit's output is t relu(v . x):

    F(W, t v) = F(W) + t g(v) + t^2 |v|^2 / 4,
    g(v) = E[(f_W(x) - f_V(x)) relu(v . x)] = sum_i K(w_i, v) - sum_j K(v_j, v),

K the arc-cosine kernel (E[relu(w . x) relu(v . x)]). Where g(v) < 0 for a unit v, F
decreases along t v for every 0 < t < -4 g(v): (W, 0) is not a local minimum of the wider
network. Floats choose v (gradient descent on the sphere); the claim rests on an Arb
enclosure of g(v) over the box that W's own proof put the exact minimum in. At the
global minimum, f_W = f_V and g = 0: it stays a global minimum.
"""

import numpy as np
from flint import arb

from .balls import precision, upper
from .certificate import Certificate
from .enclosures import Pair, Vector, balls, kernel, teacher

MARGIN = 1e-6  # a float g(v) below -MARGIN is far enough from 0 for the enclosure to show it
GLOBAL = 1e-12  # a minimum of loss below this is the global minimum: g = 0 there


def _kernels(rows: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K(row, v) for each row, and its gradient in v, written out: the descent starts at
    the teacher's rows, where autodiff of `gaussian.kernel` meets arccos' at 1."""
    norms = np.linalg.norm(rows, axis=1)
    size = np.linalg.norm(v)
    cos = np.clip(rows @ v / (norms * size), -1.0, 1.0)
    angle = np.arccos(cos)
    sin = np.sin(angle)
    values = norms * size * (sin + (np.pi - angle) * cos) / (2 * np.pi)
    grads = (norms[:, None] * sin[:, None] * v / size + (np.pi - angle)[:, None] * rows) / (
        2 * np.pi
    )
    return values, grads


def slope(weights: np.ndarray, k: int, v: np.ndarray) -> tuple[float, np.ndarray]:
    """g(v) and its gradient, in floats (teacher [I_k 0])."""
    mine, mine_grad = _kernels(weights, v)
    theirs, their_grad = _kernels(np.eye(k, weights.shape[1]), v)
    return float(mine.sum() - theirs.sum()), mine_grad.sum(0) - their_grad.sum(0)


def direction(weights: np.ndarray, k: int, steps: int = 100, seed: int = 0) -> tuple:
    """(v, g(v)): a unit v with g(v) < -MARGIN if one is found by projected gradient
    descent from the teacher's rows and random directions (the first such), else the
    smallest g found."""
    d = weights.shape[1]
    rng = np.random.default_rng(seed)
    best = (None, np.inf)
    for v in [*np.eye(k, d), *rng.standard_normal((8, d))]:
        v = v / np.linalg.norm(v)
        for _ in range(steps):
            _, grad = slope(weights, k, v)
            v = v - 0.5 * (grad - (grad @ v) * v)
            v = v / np.linalg.norm(v)
        value = slope(weights, k, v)[0]
        if value < best[1]:
            best = (v, value)
        if value < -MARGIN:
            break
    return best


def prove_descent(centre: np.ndarray, radius: float, k: int, v: np.ndarray) -> float:
    """An upper bound of g(v) over the box centre + [-radius, radius]^(n x d) (Arb): where
    it is negative, no point of the box is a local minimum with one more neuron at zero."""
    with precision(128):
        rows = [Vector.of(row) for row in balls(centre, radius)]
        new = Vector.of([arb(float(x)) for x in v])
        total = arb(0)
        for row in rows:
            total += kernel(row, new, Pair.of(row, new))
        for row in teacher(k, len(v)):
            other = Vector.of(row)
            total -= kernel(other, new, Pair.of(other, new))
        return upper(total)


def fate(certificate: Certificate | None, k: int, loss: float) -> tuple[str, float]:
    """What a proved minimum of n neurons becomes at n + 1 with the new neuron at zero:
    ("not a minimum", an upper bound of g(v) < 0), ("global", nan) for F = 0, or ("no
    descent found", the bound) where no v was shown to have g(v) < 0."""
    if loss < GLOBAL:
        return "global", np.nan
    v, _ = direction(certificate.centre, k)
    high = prove_descent(certificate.centre, certificate.radius, k, v)
    return ("not a minimum" if high < 0 else "no descent found"), high
