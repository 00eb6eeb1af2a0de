"""Splitting a neuron of a minimum: the second-order change of F against F itself, the
bound the proof rests on, proved descents, and claims that must fail."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.objectives import gaussian
from sweep.proofs import prove_point, split_neuron
from sweep.symmetry import fixed_points


@pytest.fixture(scope="module")
def k6_minima():
    points = fixed_points.search(6, [(6,), (1, 5)], starts=96)
    return [p for p in points if p.index == 0]


def _loss(weights, k):
    with jax.enable_x64(True):
        teacher = gaussian.orthonormal_teacher(k, weights.shape[1])
        return float(gaussian.loss(jnp.asarray(weights), teacher))


def _split(weights, neuron, lam, t, u):
    return np.vstack([np.delete(weights, neuron, 0), lam * weights[neuron] + t * u,
                      (1 - lam) * weights[neuron] - t * u])  # fmt: skip


def test_the_second_order_change_is_the_change_of_f(k6_minima):
    spurious = [p for p in k6_minima if p.loss > 1e-6]
    assert len(spurious) == 2
    rng = np.random.default_rng(0)
    for point in spurious:
        weights = point.weights
        for neuron in (0, 5):
            matrix = split_neuron.curvature_matrix(weights, 6, neuron)
            u = rng.standard_normal(6)
            u /= np.linalg.norm(u)
            for lam in (0.2, 0.5):
                ratios = []
                for t in (1e-2, 1e-3, 1e-4):
                    change = _loss(_split(weights, neuron, lam, t, u), 6) - point.loss
                    ratios.append(change / (t * t / (lam * (1 - lam)) * (u @ matrix @ u)))
                # the remainder is O(t^3): the ratio tends to 1 like t
                assert abs(ratios[1] - 1) < 0.02 and abs(ratios[2] - 1) < 0.002
                assert abs(ratios[2] - 1) < abs(ratios[0] - 1) / 20


def test_the_bound_holds_where_the_expansion_is_far_off(k6_minima):
    # F(split + t u) - F <= t^2 / (lam (1 - lam)) (Q + t R1 + t^2 R2), the module's
    # constants, at t and lam (near 0) where the O(t^3) part is large
    point = min((p for p in k6_minima if p.loss > 1e-6), key=lambda p: p.loss)
    weights, d = point.weights, 6
    for neuron in (0, 3):
        u, q = split_neuron.direction(weights, 6, neuron)
        norm = np.linalg.norm(weights[neuron])
        big_l = np.linalg.norm(weights, axis=1).sum() + 6
        p0 = 1 / (np.sqrt(2 * np.pi) * norm)
        for lam in (0.02, 0.3, 0.5):
            m = min(lam, 1 - lam)
            r1 = p0 * 2 * np.sqrt(2 / np.pi) * (big_l / (norm * m) + 0.5) / 2
            r2 = p0 * big_l * np.sqrt(105 * (d - 1)) / (4 * norm**2 * m**2)
            for t in (0.3, 0.05, 0.01, 1e-3):
                change = _loss(_split(weights, neuron, lam, t, u), 6) - point.loss
                assert change <= t * t / (lam * (1 - lam)) * (q + t * r1 + t * t * r2) + 1e-15


def test_spurious_minima_are_not_minima_with_a_neuron_split(k6_minima):
    for point in k6_minima:
        certificate = prove_point(point.weights, 6, point.structure, 1e-8)
        assert certificate.proved
        fate, bound = split_neuron.fate(certificate, 6, point.loss)
        if point.loss < 1e-9:
            assert fate == "global"
            continue
        assert fate == "not a minimum" and bound < -0.04
        # one neuron per orbit of the point's symmetry says the same
        orbits = split_neuron.orbits(point.structure.row_slot)
        assert len(orbits) < 6
        assert split_neuron.fate(certificate, 6, point.loss, orbits)[0] == fate
        # the descent is real: F falls along the direction proved
        u, _ = split_neuron.direction(point.weights, 6, 0)
        assert _loss(_split(point.weights, 0, 0.5, 1e-3, u), 6) < point.loss


def test_claims_that_are_false_fail(k6_minima):
    # student e1 and 2 e2 against the teacher e1, e2: the residual relu(x2) >= 0 raises F
    # when e1 is split along e2, by t^2 / (2 pi) per lam (1 - lam); the bound is positive
    weights = np.array([[1.0, 0.0], [0.0, 2.0]])
    u, q = split_neuron.direction(weights, 2, 0)
    assert q == pytest.approx(1 / (2 * np.pi), abs=1e-15)
    assert split_neuron.prove_descent(weights, 1e-10, 2, 0, u) > 0
    t, lam = 1e-4, 0.3
    change = _loss(_split(weights, 0, lam, t, u), 2) - _loss(weights, 2)
    assert change == pytest.approx(t * t / (lam * (1 - lam)) / (2 * np.pi), rel=1e-3)
    # at the teacher the residual is 0: Q = 0 cannot be shown below 0
    teacher = np.eye(6)
    for neuron in range(6):
        u, q = split_neuron.direction(teacher, 6, neuron)
        assert abs(q) < 1e-15
        assert split_neuron.prove_descent(teacher, 1e-12, 6, neuron, u) >= 0
    # a box too wide to decide: a spurious minimum's bound with radius 0.5 is not < 0
    point = min((p for p in k6_minima if p.loss > 1e-6), key=lambda p: p.loss)
    u, _ = split_neuron.direction(point.weights, 6, 0)
    assert not split_neuron.prove_descent(point.weights, 0.5, 6, 0, u) < 0
