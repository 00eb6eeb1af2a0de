"""Proofs of critical points of the closed form: the ball enclosures against mpmath at 50
digits, the published minima proved, saddles proved saddles, false claims failing."""

import mpmath
import numpy as np
import pytest
from flint import arb
from helpers import family, newton

from sweep.proofs import enclosures as E
from sweep.proofs.balls import krawczyk, precision
from sweep.proofs.certificate import certify

mp = mpmath.mp


# An independent reference: the closed form written again in mpmath, at 50 digits.
def _mp_rows(weights):
    return [[mp.mpf(float(x)) for x in row] for row in weights]


def _mp_kernel(w, v):
    nw, nv = mp.sqrt(mp.fsum(x * x for x in w)), mp.sqrt(mp.fsum(x * x for x in v))
    cos = max(-1, min(1, mp.fsum(a * b for a, b in zip(w, v, strict=True)) / (nw * nv)))
    t = mp.acos(cos)
    return nw * nv * (mp.sin(t) + (mp.pi - t) * cos) / (2 * mp.pi)


def mp_loss(rows, k, alpha=0.0):
    d = len(rows[0])
    if alpha:  # Leaky ReLU: (1 - alpha)^2 F + alpha/2 |sum_i w_i - sum_j v_j|^2
        alpha = mp.mpf(alpha)
        s = [mp.fsum(row[a] for row in rows) - (1 if a < k else 0) for a in range(d)]
        return (1 - alpha) ** 2 * mp_loss(rows, k) + alpha / 2 * mp.fsum(x * x for x in s)
    teacher = [[mp.mpf(1) if a == j else mp.mpf(0) for a in range(d)] for j in range(k)]
    own = mp.fsum(
        mp.fsum(x * x for x in w) / 2 if i == j else _mp_kernel(w, o)
        for i, w in enumerate(rows)
        for j, o in enumerate(rows)
    )
    cross = mp.fsum(_mp_kernel(w, v) for w in rows for v in teacher)
    return own / 2 - cross + mp.mpf(k) / 4 + mp.mpf(k * (k - 1)) / (4 * mp.pi)


def mp_derivatives(weights, k, alpha=0.0):
    """Gradient and Hessian of F by mpmath's numerical differentiation (50 digits)."""
    n, d = weights.shape
    x0 = [mp.mpf(float(x)) for x in weights.ravel()]

    def f(*x):
        return mp_loss([list(x[i * d : (i + 1) * d]) for i in range(n)], k, alpha)

    size = n * d
    grad = [mp.diff(f, x0, tuple(int(a == i) for a in range(size))) for i in range(size)]
    hess = [[None] * size for _ in range(size)]
    for i in range(size):
        for j in range(i, size):
            order = tuple(int(a == i) + int(a == j) for a in range(size))
            hess[i][j] = hess[j][i] = mp.diff(f, x0, order)
    return grad, hess


def inside(ball, value, slack="1e-30"):
    """value lies in the ball, up to mpmath's own error (far below float64's 1e-16)."""
    slack = mp.mpf(slack)
    mid, rad = mp.mpf(ball.mid().str(60, radius=False)), mp.mpf(float(ball.rad()))
    return abs(value - mid) <= rad + slack


def random_points():
    rng = np.random.default_rng(7)
    generic = rng.standard_normal((3, 3)) / np.sqrt(3)
    close = generic.copy()
    close[1] = close[0] * 1.3 + 1e-7 * rng.standard_normal(3)  # nearly parallel neurons
    return [generic, close]


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.1], ids=["relu", "leaky_relu"])
@pytest.mark.parametrize("weights", random_points(), ids=["generic", "near_parallel"])
def test_enclosures_contain_the_50_digit_values(weights, alpha):
    with mp.workdps(50), precision(160):
        balls = E.balls(weights)
        grad, hess = mp_derivatives(weights, 3, alpha)
        value = mp_loss(_mp_rows(weights), 3, alpha)
        assert inside(E.loss(balls, 3, alpha), value)
        assert all(inside(b, g) for b, g in zip(E.gradient(balls, 3, alpha), grad, strict=True))
        hessian = E.hessian(balls, 3, alpha)
        for i in range(9):
            for j in range(9):
                assert inside(hessian[i, j], hess[i][j]), (i, j)
        # And a wrong value is not inside: the test can fail.
        assert not inside(E.loss(balls, 3, alpha), value + mp.mpf("1e-25"))


def test_a_box_encloses_the_values_at_its_points():
    weights = random_points()[0]
    with precision(128):
        box = E.hessian(E.balls(weights, 1e-6), 3)
        for shift in (-1e-6, 0.0, 1e-6):
            point = E.hessian(E.balls(weights + shift), 3)
            assert all(box[i, j].contains(point[i, j]) for i in range(9) for j in range(9))


def k6_spurious():
    w = np.full((6, 6), -0.0504134)
    w[:, 0] = 0.308011
    w[np.arange(1, 6), np.arange(1, 6)] = 0.9867038
    w[0] = [-0.6015119] + [0.2245158] * 5
    return newton(w, 6)


def test_the_k6_spurious_minimum_is_proved():
    found = certify(k6_spurious(), 6)
    assert found.proved and found.kind == "minimum" and found.negative == 0
    assert found.loss_low <= 0.0250806 + 5e-8 and found.loss_high >= 0.0250806 - 5e-8
    assert 0 < found.loss_low and found.loss_high - found.loss_low <= 1e-9
    assert found.min_eig_low >= 0.00470 and found.contains_stored


def safran_k7():
    """Safran's published k = 7 spurious minimum, to 10 digits. The catalogue lists one
    neuron per column (as given, |grad F| = 0.37 and F = 0.062); here neurons are rows."""
    w = np.full((7, 7), -0.0350801559)
    w[:, 0] = 0.1859910463
    w[np.arange(1, 7), np.arange(1, 7)] = 0.9969227988
    w[0] = [-0.6327039049] + [0.2616910758] * 6
    return w.T


def mp_hessian(weights, k):
    """The analytic Hessian (gaussian.py's blocks) in mpmath, at 50 digits."""
    n, d = weights.shape
    rows = _mp_rows(weights)
    teacher = [[mp.mpf(1) if a == j else mp.mpf(0) for a in range(d)] for j in range(k)]

    def blocks(w, v):
        nw, nv = mp.norm(mp.matrix(w)), mp.norm(mp.matrix(v))
        u, vh = mp.matrix(w) / nw, mp.matrix(v) / nv
        cos = (u.T * vh)[0]
        t = mp.acos(cos)
        s = mp.sin(t)
        p, q = vh - cos * u, u - cos * vh
        eye = mp.eye(d)
        dw = nv / (2 * mp.pi * nw) * (s * (eye - u * u.T) + p * p.T / s)
        dv = ((mp.pi - t) * eye + s * u * vh.T + p * q.T / s) / (2 * mp.pi)
        return dw, dv

    h = mp.zeros(n * d, n * d)
    for i in range(n):
        diag = mp.eye(d) / 2
        for j in range(n):
            if i != j:
                dw, dv = blocks(rows[i], rows[j])
                diag += dw
                for a in range(d):
                    for b in range(d):
                        h[i * d + a, j * d + b] = dv[a, b]
        for v in teacher:
            diag -= blocks(rows[i], v)[0]
        for a in range(d):
            for b in range(d):
                h[i * d + a, i * d + b] = diag[a, b]
    return h


def test_safrans_k7_minimum_is_proved_and_mpmath_agrees():
    found = certify(safran_k7(), 7)
    assert found.proved and found.kind == "minimum"
    assert found.loss_low <= 0.0232027149 + 1e-10 and found.loss_high >= 0.0232027149 - 1e-10
    assert found.loss_low > 0 and found.min_eig_low >= 0.01405
    with mp.workdps(50):
        value = mp_loss(_mp_rows(found.centre), 7)
        assert found.loss_low <= value <= found.loss_high
        smallest = min(mp.eigsy(mp_hessian(found.centre, 7), eigvals_only=True))
        assert smallest >= found.min_eig_low


def test_a_moved_point_fails_with_its_reason():
    found = certify(k6_spurious() + 1e-3, 6)
    assert not found.proved and found.kind is None
    assert "not a critical point near the stored point" in found.reason


@pytest.mark.parametrize(
    "start,loss,negative",
    [
        ((0.0932746, 0.1161813, 0.1753699, 1.102762, -0.0509073), 0.0604630, 1),
        ((1.0683956, 0.0167703, -0.0137989, -0.5877302, 0.3911539), 0.0473958, 6),
    ],
)
@pytest.mark.slow
def test_saddles_of_type_1_5_are_proved_saddles(start, loss, negative):
    found = certify(family(*start), 6)
    assert found.proved and found.kind == "saddle" and found.negative == negative
    assert found.loss_low <= loss + 1e-7 and found.loss_high >= loss - 1e-7


def test_the_fully_symmetric_minimum_gd_does_not_find():
    a, b = -0.994107, 0.330710
    found = certify(newton(a * np.eye(6) + b, 6), 6)
    assert found.proved and found.kind == "minimum"
    assert found.loss_low > 0.0556 and found.loss_high < 0.0557
    assert 0.00149 <= found.min_eig_low <= 0.00151  # ~0.00150


def test_the_global_minimum_is_proved_with_zero_loss():
    permutation = np.eye(5)[[2, 0, 1, 4, 3]]
    found = certify(permutation, 5)
    assert found.proved and found.kind == "minimum"
    assert found.loss_low <= 0 <= found.loss_high
    assert found.min_eig_low >= 0.0908 - 1e-3  # 1/4 - 1/(2 pi) = 0.090845


def test_the_working_precision_is_restored():
    from flint import ctx

    before = ctx.prec
    certify(np.eye(3), 3)
    assert ctx.prec == before and arb(1).rad() == 0


def test_krawczyk_proves_a_true_zero_and_refuses_a_false_one():
    # g(x) = x^2 - 2: a unique zero sqrt(2) in a small box around 1.41421356..., none
    # in a box around 1.5 (K(X) lands outside it).
    from flint import arb_mat

    def test(centre, radius):
        c = arb(centre)
        box = arb(centre, radius)
        return krawczyk(arb_mat([[c * c - 2]]), arb_mat([[2 * box]]), radius)[0]

    assert test(2**0.5, 1e-12)
    assert not test(1.5, 1e-3)
