"""One neuron more at a minimum: the exact quadratic, the proved descent, and claims that
must fail."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.objectives import gaussian
from sweep.proofs import extra_neuron, prove_point
from sweep.symmetry import fixed_points


@pytest.fixture(scope="module")
def k6_minima():
    points = fixed_points.search(6, [(6,), (1, 5)], starts=96)
    return [p for p in points if p.index == 0]


def test_a_new_neuron_changes_the_loss_by_an_exact_quadratic():
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((5, 5)) / np.sqrt(5)
    v = rng.standard_normal(5)
    v /= np.linalg.norm(v)
    g, grad = extra_neuron.slope(weights, 5, v)
    with jax.enable_x64(True):
        teacher = gaussian.orthonormal_teacher(5, 5)
        before = float(gaussian.loss(jnp.asarray(weights), teacher))
        for t in (1e-3, 0.1, 1.0):
            after = float(gaussian.loss(jnp.vstack([jnp.asarray(weights), t * v]), teacher))
            assert after - before == pytest.approx(t * g + t * t / 4, abs=1e-13)
    # the gradient in v, against central differences
    step = 1e-6
    numeric = [(extra_neuron.slope(weights, 5, v + step * e)[0]
                - extra_neuron.slope(weights, 5, v - step * e)[0]) / (2 * step)
               for e in np.eye(5)]  # fmt: skip
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


def test_spurious_minima_are_not_minima_with_one_neuron_more(k6_minima):
    spurious = [p for p in k6_minima if p.loss > 1e-6]
    assert len(spurious) == 2  # 1+5 (F = 0.025081) and the symmetric one (F = 0.055669)
    for point in spurious:
        certificate = prove_point(point.weights, 6, point.structure, 1e-8)
        fate, high = extra_neuron.fate(certificate, 6, point.loss)
        assert fate == "not a minimum" and high < -0.01
        # the descent it claims is real: F falls along t v at the point itself
        v, g = extra_neuron.direction(point.weights, 6)
        with jax.enable_x64(True):
            teacher = gaussian.orthonormal_teacher(6, 6)
            wider = jnp.vstack([jnp.asarray(point.weights), 0.01 * v])
            assert float(gaussian.loss(wider, teacher)) < point.loss - 0.01 * abs(g) / 2


def test_claims_that_are_false_fail(k6_minima):
    best = min(k6_minima, key=lambda p: p.loss)
    certificate = prove_point(best.weights, 6, best.structure, 1e-8)
    assert extra_neuron.fate(certificate, 6, 0.0) == ("global", pytest.approx(np.nan, nan_ok=True))
    # at the teacher g = 0 in every direction: no bound below 0 can be shown
    v = np.ones(6) / np.sqrt(6)
    assert extra_neuron.prove_descent(certificate.centre, certificate.radius, 6, v) >= 0
    # at a spurious minimum, a direction of ascent is not claimed as descent
    spurious = max(k6_minima, key=lambda p: p.loss)
    certificate = prove_point(spurious.weights, 6, spurious.structure, 1e-8)
    rows = [*spurious.weights, *np.eye(6), *(-spurious.weights)]
    v = max((r / np.linalg.norm(r) for r in rows),
            key=lambda r: extra_neuron.slope(spurious.weights, 6, r)[0])  # fmt: skip
    assert extra_neuron.slope(spurious.weights, 6, v)[0] > 0
    assert extra_neuron.prove_descent(certificate.centre, certificate.radius, 6, v) > 0
