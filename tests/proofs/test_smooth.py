"""Proofs for erf and normal_cdf units: the enclosures hold the autodiff values of the
population loss, and the proof confirms true claims and fails false ones."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flint import arb

from sweep.objectives import KernelLoss, gaussian, kernels
from sweep.outcomes import PointKind, Verdict
from sweep.proofs import Claim, prove_point
from sweep.proofs import enclosures as E
from sweep.proofs.balls import precision
from sweep.proofs.pipeline import judge
from sweep.proofs.smooth import ArcsineLandscape


def objective(name, k):
    return KernelLoss(k, k, kernels.kernel(name))


@pytest.mark.parametrize("name", ["erf", "normal_cdf"])
def test_the_enclosures_hold_the_loss_its_gradient_and_hessian_over_a_box(name):
    k, radius = 3, 1e-3
    centre = np.random.default_rng(1).normal(size=(k, k)) / 2
    landscape, teacher = ArcsineLandscape(name), gaussian.orthonormal_teacher(k)
    with precision(96):
        box = E.balls(centre, radius)
        loss, grad = landscape.loss(box, k), landscape.gradient(box, k)
        hess = landscape.hessian(box, k)
    for corner in np.random.default_rng(2).uniform(-radius, radius, size=(4, k, k)):
        point = jnp.asarray(centre + corner)
        value, slope = objective(name, k).loss_and_grad(point, teacher)
        assert loss.contains(arb(float(value)))
        assert all(g.contains(arb(float(x))) for g, x in zip(grad, np.ravel(slope), strict=True))
        exact = np.asarray(objective(name, k).hessian(point, teacher))
        assert all(hess[i, j].contains(arb(float(exact[i, j])))
                   for i in range(k * k) for j in range(k * k))  # fmt: skip


def delta_point(k, start, name="erf"):
    """A critical point a I + b 11^T (fixed by the diagonal permutations Delta S_k), by
    Newton in (a, b) from `start`."""
    teacher = gaussian.orthonormal_teacher(k)
    loss = objective(name, k).loss

    def reduced(theta):
        return loss(theta[0] * jnp.eye(k) + theta[1] * jnp.ones((k, k)), teacher)

    step = jax.jit(lambda t: t - jnp.linalg.solve(jax.hessian(reduced)(t), jax.grad(reduced)(t)))
    theta = jnp.asarray(start)
    for _ in range(40):
        theta = step(theta)
    return np.asarray(theta[0] * jnp.eye(k) + theta[1] * jnp.ones((k, k)))


def test_an_erf_saddle_is_proved_with_its_index_and_a_minimum_claim_fails():
    k = 3
    point = delta_point(k, [-0.6, 0.5])  # a = -0.6149, b = 0.4962: F = 0.01379
    found = prove_point(point, k, activation="erf")
    assert found.proved and found.kind is PointKind.SADDLE and found.negative == 1
    assert found.loss_low > 0.0137 and found.loss_high < 0.0138
    assert judge(found, Claim(kind=PointKind.SADDLE, negative=1))[0] is Verdict.PROVED
    verdict, reason = judge(found, Claim(kind=PointKind.MINIMUM))
    assert verdict is Verdict.FAILED and "saddle" in reason


def test_the_symmetric_plateau_is_not_isolated_and_is_not_proved():
    """Saad & Solla's plateau, every student neuron alike (a = 0, b = 1/sqrt(k (2k - 1))),
    has k - 1 zero Hessian eigenvalues: no box holds it alone, and the proof says so."""
    k = 3
    point = delta_point(k, [0.1, 0.3])
    np.testing.assert_allclose(point, np.full((k, k), 1 / np.sqrt(k * (2 * k - 1))), atol=1e-12)
    found = prove_point(point, k, activation="erf")
    assert not found.proved


def test_the_teacher_is_proved_the_global_minimum_and_a_shifted_point_fails():
    k = 4
    found = prove_point(np.eye(k) + 1e-10, k, activation="normal_cdf")
    assert found.proved and found.kind is PointKind.MINIMUM
    assert judge(found, Claim(kind=PointKind.MINIMUM, loss_positive=False))[0] is Verdict.PROVED
    assert judge(found, Claim(loss_positive=True))[0] is Verdict.FAILED
    moved = prove_point(np.eye(k) + 1e-3, k, activation="erf")
    assert not moved.proved and "not a critical point" in moved.reason
