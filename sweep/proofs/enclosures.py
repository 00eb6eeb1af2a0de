"""Rigorous enclosures of the closed-form population loss F, its gradient and its Hessian
over a box of weights, in ball arithmetic (Arb, through python-flint).

Every quantity is an `arb` ball that contains the true value for every point of the input
balls, with outward rounding in every operation; no floating-point number enters except
as an exact input. The formulas are those of `objectives/gaussian.py` (Safran & Shamir 2018;
Brutzkus & Globerson 2017) for a student W (n, d) and the teacher V = [I_k 0]:

    g(w, v) = |w| |v| (sin t + (pi - t) cos t) / (2 pi),        F = 1/2 sum g(w_i, w_j) - ...
    h(w, v) = (|v| sin t u + (pi - t) v) / (2 pi),               dF/dw_i = sum_j h(w_i, w_j) - ...
    dh/dw = |v| / (2 pi |w|) (sin t (I - u u^T) + p p^T / sin t),   p = vhat - cos t u
    dh/dv = ((pi - t) I + sin t u vhat^T + p q^T / sin t) / (2 pi), q = u - cos t vhat

The terms p p^T / sin t and p q^T / sin t are 0/0 for parallel vectors. Since |p| = |q| =
sin t exactly, every entry of both lies in [-sin t, sin t]: where the ball of sin t comes
near 0, that bound encloses them instead. Leaky ReLU (slope alpha) adds
alpha/2 |sum_i w_i - sum_j v_j|^2 to (1 - alpha)^2 F (see `objectives/leaky.py`).
"""

from dataclasses import dataclass

import numpy as np
from flint import arb, arb_mat

from .balls import identity

Balls = list[list[arb]]  # rows of balls, (n, d)


def balls(points: np.ndarray, radius: float = 0.0) -> Balls:
    """Balls around the (exact) float entries of a matrix, of the given radius."""
    return [[arb(float(x), radius) for x in row] for row in np.asarray(points, float)]


def teacher(k: int, d: int) -> Balls:
    """V = [I_k 0], exact."""
    return [[arb(1) if a == j else arb(0) for a in range(d)] for j in range(k)]


@dataclass
class Vector:
    """A row w with its norm |w| and direction u = w / |w|, as balls."""

    entries: list
    norm: arb
    unit: list

    @staticmethod
    def of(entries: list) -> "Vector":
        norm = sum((x * x for x in entries), arb(0)).sqrt()
        return Vector(entries, norm, [x / norm for x in entries])


def angle(cos: arb) -> arb:
    """arccos over a ball of cosines: from its endpoints clamped to [-1, 1] (arccos is
    decreasing there, and the true cosine lies in [-1, 1]; a ball near +-1 pokes past it)."""
    low, high = cos.lower().max(arb(-1)), cos.upper().min(arb(1))
    return high.acos().union(low.acos())


@dataclass
class Pair:
    """The angle terms of a pair (w, v): cos t, pi - t, sin t, p and q."""

    cos: arb
    rest: arb  # pi - t
    sin: arb
    p: list
    q: list

    @staticmethod
    def of(w: Vector, v: Vector) -> "Pair":
        cos = sum((a * b for a, b in zip(w.unit, v.unit, strict=True)), arb(0))
        t = angle(cos)
        p = [b - cos * a for a, b in zip(w.unit, v.unit, strict=True)]
        q = [a - cos * b for a, b in zip(w.unit, v.unit, strict=True)]
        return Pair(cos, arb.pi() - t, t.sin(), p, q)

    def over_sin(self, left: list, right: list) -> arb_mat:
        """left right^T / sin t for left, right among p, q (entries within [-sin, sin])."""
        d = len(left)
        separated = self.sin.lower() > 0 and self.sin.rad() < self.sin.mid() / 16
        if separated:
            return (arb_mat(d, 1, left) * arb_mat(1, d, right)) * (1 / self.sin)
        bound = arb(0, self.sin.upper())
        return arb_mat(d, d, [bound] * (d * d))


def kernel(w: Vector, v: Vector, pair: Pair) -> arb:
    """E[relu(w . x) relu(v . x)] over balls (the arc-cosine kernel)."""
    return w.norm * v.norm * (pair.sin + pair.rest * pair.cos) / (2 * arb.pi())


def _h(w: Vector, v: Vector, pair: Pair) -> list:
    two_pi = 2 * arb.pi()
    return [
        (v.norm * pair.sin * u + pair.rest * b) / two_pi
        for u, b in zip(w.unit, v.entries, strict=True)
    ]


def dh_dw(w: Vector, v: Vector, pair: Pair) -> arb_mat:
    d = len(w.entries)
    u = arb_mat(d, 1, w.unit)
    radial = (identity(d) - u * u.transpose()) * pair.sin
    return (radial + pair.over_sin(pair.p, pair.p)) * (v.norm / (2 * arb.pi() * w.norm))


def dh_dv(w: Vector, v: Vector, pair: Pair) -> arb_mat:
    d = len(w.entries)
    cross = arb_mat(d, 1, w.unit) * arb_mat(1, d, v.unit)
    total = identity(d) * pair.rest + cross * pair.sin + pair.over_sin(pair.p, pair.q)
    return total * (1 / (2 * arb.pi()))


def flat(rows: Balls) -> list:
    return [x for row in rows for x in row]


def loss(weights: Balls, k: int, alpha: float = 0.0) -> arb:
    """An enclosure of F(W) over the balls `weights` (n, d), teacher [I_k 0]."""
    d = len(weights[0])
    students = [Vector.of(row) for row in weights]
    teachers = [Vector.of(row) for row in teacher(k, d)]
    own = sum((w.norm * w.norm / 2 for w in students), arb(0))
    for i, w in enumerate(students):
        for j, other in enumerate(students):
            if i != j:
                own += kernel(w, other, Pair.of(w, other))
    cross = arb(0)
    for w in students:
        for v in teachers:
            cross += kernel(w, v, Pair.of(w, v))
    value = own / 2 - cross + arb(k) / 4 + arb(k * (k - 1)) / (4 * arb.pi())
    return _leaky_loss(value, weights, k, alpha)


def _mismatch(weights: Balls, k: int) -> list:
    d = len(weights[0])
    return [sum((row[a] for row in weights), arb(0)) - (1 if a < k else 0) for a in range(d)]


def _leaky_loss(value: arb, weights: Balls, k: int, alpha: float) -> arb:
    if not alpha:
        return value
    a = arb(alpha)
    s = _mismatch(weights, k)
    return (1 - a) ** 2 * value + a / 2 * sum((x * x for x in s), arb(0))


def gradient(weights: Balls, k: int, alpha: float = 0.0) -> list:
    """An enclosure of dF/dW over the balls, flattened row-major (n d,)."""
    d = len(weights[0])
    students = [Vector.of(row) for row in weights]
    teachers = [Vector.of(row) for row in teacher(k, d)]
    rows = []
    for i, w in enumerate(students):
        total = [x / 2 for x in w.entries]  # h(w, w) = w / 2
        for j, other in enumerate(students):
            if i != j:
                total = [a + b for a, b in zip(total, _h(w, other, Pair.of(w, other)), strict=True)]
        for v in teachers:
            total = [a - b for a, b in zip(total, _h(w, v, Pair.of(w, v)), strict=True)]
        rows.append(total)
    if alpha:
        a, s = arb(alpha), _mismatch(weights, k)
        rows = [[(1 - a) ** 2 * x + a * y for x, y in zip(row, s, strict=True)] for row in rows]
    return flat(rows)


def hessian(weights: Balls, k: int, alpha: float = 0.0) -> arb_mat:
    """An enclosure of the Hessian of F over the balls, (n d, n d): every Hessian of a point
    in the box is a member."""
    n, d = len(weights), len(weights[0])
    students = [Vector.of(row) for row in weights]
    teachers = [Vector.of(row) for row in teacher(k, d)]
    blocks = {}
    for i, w in enumerate(students):
        diagonal = identity(d) * arb(0.5)
        for j, other in enumerate(students):
            if i != j:
                pair = Pair.of(w, other)
                diagonal += dh_dw(w, other, pair)
                blocks[i, j] = dh_dv(w, other, pair)
        for v in teachers:
            diagonal -= dh_dw(w, v, Pair.of(w, v))
        blocks[i, i] = diagonal
    full = arb_mat(n * d, n * d)
    a = arb(alpha)
    for (i, j), block in blocks.items():
        for r in range(d):
            for c in range(d):
                entry = block[r, c]
                if alpha:
                    entry = (1 - a) ** 2 * entry + (a if r == c else 0)
                full[i * d + r, j * d + c] = entry
    return full


@dataclass(frozen=True)
class ReluLandscape:
    """F of ReLU (alpha = 0) or Leaky ReLU units, enclosed over balls: what the full-space
    proof (`certificate.py`) asks of a loss (`smooth.ArcsineLandscape` is the other)."""

    alpha: float = 0.0

    def loss(self, weights: Balls, k: int) -> arb:
        return loss(weights, k, self.alpha)

    def gradient(self, weights: Balls, k: int) -> list:
        return gradient(weights, k, self.alpha)

    def hessian(self, weights: Balls, k: int) -> arb_mat:
        return hessian(weights, k, self.alpha)
