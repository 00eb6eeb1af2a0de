"""Splitting a neuron of a minimum: the second-order change of F against F itself, and
the global minimum kept."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.diagnostics import split
from sweep.objectives import gaussian
from sweep.symmetry import fixed_points


@pytest.fixture(scope="module")
def k6_minima():
    points = fixed_points.search(6, [(6,), (1, 5)], starts=96)
    return [p for p in points if p.index == 0]


def _loss(weights, k):
    with jax.enable_x64(True):
        teacher = gaussian.orthonormal_teacher(k, weights.shape[1])
        return float(gaussian.loss(jnp.asarray(weights), teacher))


def test_the_second_order_change_is_the_change_of_f(k6_minima):
    spurious = [p for p in k6_minima if p.loss > 1e-6]
    assert len(spurious) == 2
    rng = np.random.default_rng(0)
    for point in spurious:
        weights = point.weights
        for neuron in (0, 5):
            matrix = split.curvature_matrix(weights, np.eye(6), neuron)
            u = rng.standard_normal(6)
            u /= np.linalg.norm(u)
            for lam in (0.2, 0.5):
                ratios = []
                for t in (1e-2, 1e-3, 1e-4):
                    wide = np.vstack([np.delete(weights, neuron, 0), lam * weights[neuron] + t * u,
                                      (1 - lam) * weights[neuron] - t * u])  # fmt: skip
                    change = _loss(wide, 6) - _loss(weights, 6)
                    ratios.append(change / (t * t / (lam * (1 - lam)) * (u @ matrix @ u)))
                # the remainder is O(t^3): the ratio tends to 1 like t
                assert abs(ratios[1] - 1) < 0.02 and abs(ratios[2] - 1) < 0.002
                assert abs(ratios[2] - 1) < abs(ratios[0] - 1) / 20


def test_spurious_minima_split_into_saddles_and_the_global_stays(k6_minima):
    for point in k6_minima:
        fate, value = split.fate(point.weights, 6, point.loss)
        if point.loss < 1e-9:
            assert fate == "global"
            # the residual is 0 at the teacher: no curvature at all
            assert np.allclose(split.curvatures(point.weights, np.eye(6)), 0, atol=1e-12)
        else:
            assert fate == "saddle" and value < -0.04
            # the descent is real: F falls along the eigenvector of the smallest curvature
            matrix = split.curvature_matrix(point.weights, np.eye(6), 0)
            basis = np.linalg.svd(point.weights[0][None, :])[2][1:]
            u = basis.T @ np.linalg.eigh(basis @ matrix @ basis.T)[1][:, 0]
            wide = np.vstack([point.weights[1:], 0.5 * point.weights[0] + 1e-3 * u,
                              0.5 * point.weights[0] - 1e-3 * u])  # fmt: skip
            assert _loss(wide, 6) < point.loss


def test_a_split_that_raises_f_is_not_called_a_saddle():
    # student e1 and 2 e2 against the teacher e1, e2: the residual is relu(x2) >= 0. On
    # e1's hyperplane it is positive: splitting e1 along e2 raises F, by t^2 / (2 pi) per
    # lam (1 - lam) (A = diag(0, 2), |w| = 1); on e2's hyperplane it vanishes
    teacher = np.eye(2)
    weights = np.array([[1.0, 0.0], [0.0, 2.0]])
    low = split.curvatures(weights, teacher)
    assert low == pytest.approx([1 / (2 * np.pi), 0.0], abs=1e-15)
    assert split.fate(weights, 2, _loss(weights, 2))[0] == "no second-order descent"
    t, lam = 1e-4, 0.3
    wide = np.array([[lam, t], [1 - lam, -t], [0.0, 2.0]])
    change = _loss(wide, 2) - _loss(weights, 2)
    assert change == pytest.approx(t * t / (lam * (1 - lam)) / (2 * np.pi), rel=1e-3)
