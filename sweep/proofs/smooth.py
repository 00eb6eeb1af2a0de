"""Rigorous enclosures of the population loss of erf and normal_cdf units, its gradient
and its Hessian over a box of weights, in ball arithmetic (Arb, through python-flint).

Both kernels are arcsines of one ratio (`objectives/kernels.py`):

    K(sa, sb, c) = base + scale * arcsin(c / sqrt((1 + sa)(1 + sb))),

erf(z / sqrt 2): base 0, scale 2/pi (Saad & Solla 1995); Phi(z): base 1/4, scale 1/(2 pi),
with sa = |a|^2, sb = |b|^2, c = a.b. The ratio's modulus is below 1 for every finite
pair of vectors (c^2 <= sa sb < (1 + sa)(1 + sb)), so K is analytic everywhere: no limit
to take, and K's first and second partial derivatives in (sa, sb, c) come from a
second-order jet in three variables (`symmetry/jets.py`) carried on Arb balls. The chain
rule through sa = |w_i|^2, sb = |w_j|^2, c = w_i . w_j gives F's gradient and Hessian;
the teacher is V = [I_k 0] with unit output weights, the student's output weights are ones.
"""

from dataclasses import dataclass

from flint import arb, arb_mat

from ..symmetry import jets
from .balls import identity
from .enclosures import Balls, flat, teacher


class BallScalars:
    """Scalar functions of Arb balls for the jets (only what the arcsine needs)."""

    pi = arb.pi()

    @staticmethod
    def sqrt(x: arb) -> arb:
        return x.sqrt()


@dataclass(frozen=True)
class ArcsineLandscape:
    """F of erf (`name` "erf") or normal_cdf units, enclosed over balls; the interface of
    `enclosures.ReluLandscape` (loss, gradient, hessian of rows of balls and k)."""

    name: str = "erf"

    def _constants(self) -> tuple[arb, arb]:
        if self.name == "erf":
            return arb(0), 2 / arb.pi()
        return arb(1) / 4, 1 / (2 * arb.pi())

    def kernel(self, sa: arb, sb: arb, c: arb) -> jets.Jet:
        """K at (sa, sb, c) with its gradient and Hessian in those three variables."""
        x, y, z = (
            jets.Jet(
                value, arb_mat([[1 if i == j else 0 for j in range(3)]]), arb_mat(3, 3), BallScalars
            )
            for i, value in enumerate((sa, sb, c))
        )
        base, scale = self._constants()
        ratio = z / jets.JetArithmetic(BallScalars).sqrt((x + 1) * (y + 1))
        r = ratio.value
        gap = 1 - r * r
        slope = 1 / gap.sqrt()
        return ratio.apply(r.asin(), slope, r * slope / gap) * scale + base

    def diagonal(self, s: arb) -> tuple[arb, arb, arb]:
        """K(s, s, s) = base + scale arcsin(s / (1 + s)) with its first two derivatives."""
        base, scale = self._constants()
        r = s / (1 + s)
        dr, ddr = 1 / ((1 + s) * (1 + s)), -2 / ((1 + s) * (1 + s) * (1 + s))
        slope = 1 / (1 - r * r).sqrt()
        curve = r * slope / (1 - r * r)
        return base + scale * r.asin(), scale * slope * dr, scale * (curve * dr * dr + slope * ddr)

    def loss(self, weights: Balls, k: int) -> arb:
        """An enclosure of F over the balls `weights` (n, d)."""
        d = len(weights[0])
        rows, teachers = weights, teacher(k, d)
        total = arb(0)
        for i, a in enumerate(rows):
            for j, b in enumerate(rows):
                total += self._pair(a, b, i == j) / 2
            for v in teachers:
                total -= self._pair(a, v, False)
        for i, a in enumerate(teachers):
            for j, b in enumerate(teachers):
                total += self._pair(a, b, i == j) / 2
        return total

    def _pair(self, a: list, b: list, same: bool) -> arb:
        if same:
            return self.diagonal(_dot(a, a))[0]
        return self.kernel(_dot(a, a), _dot(b, b), _dot(a, b)).value

    def gradient(self, weights: Balls, k: int) -> list:
        """An enclosure of dF/dW over the balls, flattened row-major (n d,)."""
        d = len(weights[0])
        rows, teachers = weights, teacher(k, d)
        found = []
        for i, a in enumerate(rows):
            total = [self.diagonal(_dot(a, a))[1] * x for x in a]
            for j, b in enumerate(rows):
                if i != j:
                    total = _add(total, self._pull(a, b))
            for v in teachers:
                total = _add(total, [-x for x in self._pull(a, v)])
            found.append(total)
        return flat(found)

    def _pull(self, a: list, b: list) -> list:
        """d K(|a|^2, |b|^2, a.b) / da = 2 K_a a + K_c b."""
        jet = self.kernel(_dot(a, a), _dot(b, b), _dot(a, b))
        return [2 * jet.grad[0, 0] * x + jet.grad[0, 2] * y for x, y in zip(a, b, strict=True)]

    def hessian(self, weights: Balls, k: int) -> arb_mat:
        """An enclosure of the Hessian of F over the balls, (n d, n d)."""
        n, d = len(weights), len(weights[0])
        rows, teachers = weights, teacher(k, d)
        full = arb_mat(n * d, n * d)
        for i, a in enumerate(rows):
            _, first, second = self.diagonal(_dot(a, a))
            own = identity(d) * first + _column(a) * _column(a).transpose() * (2 * second)
            for j, b in enumerate(rows):
                if i != j:
                    jet = self.kernel(_dot(a, a), _dot(b, b), _dot(a, b))
                    own += _same_block(jet, a, b)
                    _place(full, i, j, _cross_block(jet, a, b), d)
            for v in teachers:
                own -= _same_block(self.kernel(_dot(a, a), _dot(v, v), _dot(a, v)), a, v)
            _place(full, i, i, own, d)
        return full


def _dot(a: list, b: list) -> arb:
    return sum((x * y for x, y in zip(a, b, strict=True)), arb(0))


def _add(a: list, b: list) -> list:
    return [x + y for x, y in zip(a, b, strict=True)]


def _column(a: list) -> arb_mat:
    return arb_mat(len(a), 1, a)


def _same_block(jet: jets.Jet, a: list, b: list) -> arb_mat:
    """d/da of 2 K_a a + K_c b: 2 K_a I + 2 a (2 K_aa a + K_ac b)^T + b (2 K_ac a + K_cc b)^T."""
    g, h = jet.grad, jet.hess
    ca, cb = _column(a), _column(b)
    first = ca * (ca.transpose() * (2 * h[0, 0]) + cb.transpose() * h[0, 2]) * 2
    second = cb * (ca.transpose() * (2 * h[0, 2]) + cb.transpose() * h[2, 2])
    return identity(len(a)) * (2 * g[0, 0]) + first + second


def _cross_block(jet: jets.Jet, a: list, b: list) -> arb_mat:
    """d/db of 2 K_a a + K_c b: K_c I + 2 a (2 K_ab b + K_ac a)^T + b (2 K_bc b + K_cc a)^T."""
    g, h = jet.grad, jet.hess
    ca, cb = _column(a), _column(b)
    first = ca * (cb.transpose() * (2 * h[0, 1]) + ca.transpose() * h[0, 2]) * 2
    second = cb * (cb.transpose() * (2 * h[1, 2]) + ca.transpose() * h[2, 2])
    return identity(len(a)) * g[0, 2] + first + second


def _place(full: arb_mat, i: int, j: int, block: arb_mat, d: int) -> None:
    for r in range(d):
        for c in range(d):
            full[i * d + r, j * d + c] = block[r, c]
