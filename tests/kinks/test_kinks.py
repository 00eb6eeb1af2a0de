"""Exact outcomes on kinks: hand-built points whose answer is known (Wu, Simsek & Ged's
conditions for one hidden layer), the finish onto the exact point, and false claims that
must fail."""

import numpy as np
import pytest

from sweep.kinks import deep, finish_deep, finish_shallow, shallow
from sweep.kinks.pieces import Pairs
from sweep.kinks.verdict import MINIMUM, NOT_STATIONARY, SADDLE
from sweep.objectives import Network
from sweep.problems.dataset import linear_regression_error

GRAD_TOL = 1e-10


def loss(net, theta, data):
    return float(net.loss(np.asarray(theta, float), data))


def one_neuron(alpha=0.0, targets=(-1.0, 1.0, 1.0)):
    """f(x) = sigma(w x + b), fixed output weight, on x = 1, 2, 3: with (w, b) = (0.6, -0.6)
    the point x = 1 sits exactly on the neuron's kink."""
    net = Network(n=1, d=1, biases=True, alpha=alpha)
    data = (np.array([[1.0], [2.0], [3.0]]), np.array(targets))
    return net, data, np.array([0.6, -0.6])


def test_a_strict_minimum_on_a_kink():
    net, data, theta = one_neuron()
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.kind == MINIMUM and found.decided_by == "kink"
    assert found.kinks == 1
    # Off the kink the smooth part is fitted exactly: residuals 1, -0.4, 0.2 and the kink
    # point's subgradient weight r_1 / ... = 0.2 of the way into its interval.
    assert found.margin == pytest.approx(0.2, abs=1e-12)
    assert loss(net, theta, data) == pytest.approx(0.2, abs=1e-15)
    # Strict: every small move raises the loss, including along the kink and across it.
    assert rises_in_every_direction(net, theta, data)


def rises_in_every_direction(net, theta, data, trials=500):
    base, rng = loss(net, theta, data), np.random.default_rng(0)
    for size in (1e-6, 1e-4, 1e-2):
        moves = rng.standard_normal((trials, len(theta)))
        moves *= size / np.linalg.norm(moves, axis=1, keepdims=True)
        if min(loss(net, theta + move, data) for move in moves) <= base:
            return False
    return True


def test_leaky_relu_moves_the_margin_as_the_formula_says():
    # alpha = 0.1: the kink point contributes alpha r_1 x~_1 / N to the smooth part,
    # G = (-0.1, -0.1) / 3 = -mu x~_1 with mu = 0.1 / 3, inside [0, beta], beta =
    # (1 - alpha) r_1 / N = 0.3: margin min(mu, beta - mu) / beta = 1/9 (ReLU: 0.2).
    net, data, theta = one_neuron(alpha=0.1)
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.kind == MINIMUM and found.margin == pytest.approx(1 / 9, abs=1e-12)
    assert rises_in_every_direction(net, theta, data)
    point, _ = finish_shallow.finish(net, theta + np.array([0.003, -0.002]), data)
    np.testing.assert_allclose(point, theta, atol=1e-12)


def test_the_finish_lands_on_the_exact_kink_point():
    net, data, theta = one_neuron()
    for move in ([1e-3, -2e-3], [-4e-3, 1e-3], [2e-4, 2e-4]):
        point, solves = finish_shallow.finish(net, theta + np.array(move), data)
        np.testing.assert_allclose(point, theta, atol=1e-12)
        assert solves >= 1


def test_a_false_minimum_claim_fails():
    # The same kink point with other targets: the kink weight falls outside [0, 1].
    net, data, theta = one_neuron(targets=(1.0, 1.0, 1.0))
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.kind == NOT_STATIONARY and found.margin < 0
    # A point near, not on, the kink is not stationary either: the smooth gradient is large.
    net, data, theta = one_neuron()
    found = shallow.verdict(net, theta + np.array([1e-3, 0.0]), data, GRAD_TOL)
    assert found.kind == NOT_STATIONARY and found.gradient > 1e-4


def escape_case(targets=(-1.0, 1.0, 1.0, 0.8)):
    """Two neurons, trained output and biases, on x = 1, 2, 3, -1. Neuron 0 sits with
    x = 1 on its kink and fits the rest; neuron 1 has output weight 0 and its kink at
    x = 1 too, where the residual it sees is not balanced: an escape neuron."""
    net = Network(n=2, d=1, biases=True, train_output=True)
    data = (np.array([[1.0], [2.0], [3.0], [-1.0]]), np.array(targets))
    # theta layout: W1 (2, 1), b1 (2,), a (2,), c.
    theta = np.array([0.6, 1.0, -0.6, -1.0, 1.0, 0.0, 0.0])
    return net, data, theta


def test_a_kink_point_with_an_escape_neuron_is_a_saddle():
    net, data, theta = escape_case()
    base = loss(net, theta, data)
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.kind == SADDLE and found.decided_by == "escape_neuron"
    assert found.escape == 1 and found.kinks >= 1
    # The direction it reports lowers the loss (at second order: a and w move together).
    drops = [loss(net, theta + eps * found.direction, data) - base for eps in (1e-2, 1e-3)]
    assert all(drop < 0 for drop in drops)
    # With output weight 0 the gradient in every direction is zero: no first-order test
    # sees this saddle.
    assert found.gradient <= GRAD_TOL


def test_a_zero_output_weight_on_a_dead_neuron_is_no_escape():
    # Neuron 1 moved below every data point (b = -5): it sees no residual, so its zero
    # output weight offers no descent and the point is the (non-strict) minimum of neuron 0.
    net, data, theta = escape_case()
    theta[3] = -5.0
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.escape == 0 and found.kind == MINIMUM and found.decided_by == "kink"
    rng, base = np.random.default_rng(1), loss(net, theta, data)
    moves = rng.standard_normal((2000, len(theta))) * 1e-3
    assert min(loss(net, theta + move, data) for move in moves) >= base - 1e-15


def essentially_linear_case():
    """The Holzmüller-Steinwart 1-D setting: on x = -3..3 without 0 a net whose kinks lie
    between -1 and 1 is linear regression on each half-line."""
    x = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    # A line on each side (slopes -1 and 0.5 through 0) plus a pattern (1, -2, 1) that no
    # affine fit of three equally spaced points sees.
    wiggle = np.array([1.0, -2.0, 1.0])
    y = np.concatenate([-x[:3] + 0.2 * wiggle, 0.5 * x[3:] + 0.3 * wiggle])
    # Neuron 0 (w = 1) carries x > 0, neuron 1 (w = -1) x < 0; both kinks sit at 0.
    theta = np.array([1.0, -1.0, 0.0, 0.0, 0.5, 1.0, 0.0])  # W1, b1, a, c
    net = Network(n=2, d=1, biases=True, train_output=True)
    return net, (x[:, None], y), theta


def test_an_essentially_linear_point_is_a_non_strict_spurious_minimum():
    net, data, theta = essentially_linear_case()
    found = shallow.verdict(net, theta, data, GRAD_TOL)
    assert found.kind == MINIMUM and found.kinks == 0 and found.decided_by == "kink"
    # Its loss is the piecewise linear regression error, above zero, where wider students
    # interpolate the six points (loss 0): a spurious minimum of the sweep's widths.
    value = loss(net, theta, data)
    assert value == pytest.approx(linear_regression_error(*data), rel=1e-12)
    assert value == pytest.approx((6 * 0.2**2 + 6 * 0.3**2) / 12, rel=1e-12)
    # Not strict: the rescaling a -> s a, (w, b) -> (w, b) / s keeps the loss, so the
    # Hessian has a zero eigenvalue and no negative one.
    eigenvalues = np.linalg.eigvalsh(np.asarray(net.hessian(theta, data)))
    assert abs(eigenvalues).min() < 1e-10 and eigenvalues.min() > -1e-10


def deep_case(targets=(-1.0, 1.0, 1.0)):
    """Case A one layer deeper: f(x) = relu(w2 relu(w1 x + b1) + b2) with (w1, b1, w2, b2)
    = (0.6, -0.6, 1, 0): the same function, and x = 1 sits on a kink in both layers."""
    net = Network(n=1, d=1, depth=3, biases=True)
    data = (np.array([[1.0], [2.0], [3.0]]), np.array(targets))
    return net, data, np.array([0.6, -0.6, 1.0, 0.0])


@pytest.mark.slow
def test_a_deep_kink_minimum_is_checked_piece_by_piece():
    net, data, theta = deep_case()
    found = deep.verdict(net, theta, data, GRAD_TOL, eig_tol=1e-9)
    assert found.kind == MINIMUM and found.kinks == 2 and found.decided_by == "kink"
    assert found.margin >= 0  # 0: the two kinks meet at x = 1, a degenerate pair
    base, rng = loss(net, theta, data), np.random.default_rng(2)
    moves = rng.standard_normal((3000, 4)) * np.exp(rng.uniform(-9, -4, (3000, 1)))
    assert min(loss(net, theta + move, data) for move in moves) >= base - 1e-15
    # The same point with targets it does not fit at first order is not stationary.
    net, data, theta = deep_case(targets=(1.0, 1.0, 1.0))
    assert deep.verdict(net, theta, data, GRAD_TOL, eig_tol=1e-9).kind == NOT_STATIONARY


def test_the_deep_finish_lands_on_a_kink_minimum():
    net, data, theta = deep_case()
    point, steps = finish_deep.finish(net, theta + np.array([2e-4, -1e-4, 3e-4, 0.0]), data)
    assert steps >= 1
    assert loss(net, point, data) == pytest.approx(0.2, abs=1e-12)
    assert deep.verdict(net, point, data, GRAD_TOL, eig_tol=1e-9).kind == MINIMUM


def test_the_deep_newton_gives_up_once_it_leaves_the_ball():
    net, data, theta = deep_case()
    start = theta + np.array([2e-4, -1e-4, 3e-4, 0.0])
    pairs = Pairs(net, start, data, 1e-3)
    point, steps = finish_deep.newton_step(pairs, start, start, 1.0)
    assert loss(net, point, data) == pytest.approx(0.2, abs=1e-12)
    # Its first step moves farther than 1e-5: in a ball that small the solve ends there.
    assert finish_deep.newton_step(pairs, start, start, 1e-5) == (None, 1)


def test_a_newton_system_that_is_not_finite_ends_the_solve():
    # In a deep_students sweep (k = 5) LAPACK's SVD did not converge on a Newton system,
    # and its error ended the sweep. Such a system (here one that is not finite) ends
    # the solve instead.
    net, data, theta = deep_case()
    pairs = Pairs(net, theta, data, 1e-3)
    pairs.hessian = lambda *_: np.full((4, 4), np.nan)
    assert finish_deep.newton_step(pairs, theta, theta, 1.0) == (None, 1)
    assert finish_deep.least_squares(np.eye(2), np.array([1.0, np.inf])) is None


def test_gauss_newton_reaches_a_zero_loss_point():
    # Targets the deep case fits exactly (a realizable teacher); start next to it.
    net, data, theta = deep_case()
    data = (data[0], np.asarray(net.apply(theta, data[0])))
    start = theta + np.array([1e-3, -2e-3, 1e-3, 5e-4])
    assert loss(net, start, data) > 1e-7
    point, steps = finish_deep.interpolate(net, start, data, loss_tol=1e-20)
    assert loss(net, point, data) <= 1e-20 and steps >= 1
    # Targets nothing in reach fits: no zero-loss point, no claim.
    assert finish_deep.interpolate(net, theta, (data[0], data[1] + [1.0, -1.0, 1.0]), 1e-20) is None
