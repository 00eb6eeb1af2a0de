"""The loss reduced to Fix(G) (`symmetry/reduced.py`): its float, jet and JAX back ends
against autodiff of the full loss at random points of Fix(G)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.objectives import KernelLoss, PopulationLoss, gaussian, kernels
from sweep.symmetry import reduced
from sweep.symmetry.fixed_points import template

# Pairs, triples, and one or two extra neurons of their own (n = k + 1, k + 2); the
# larger ones run in `make test`, not in `make test-quick`.
TYPES = [
    ((2, 4), 0),
    pytest.param((1, 5), 1, marks=pytest.mark.slow),
    ((1, 2, 3), 0),
    pytest.param((1, 2), 2, marks=pytest.mark.slow),
]


def full(structure):
    """F, its gradient and its Hessian at W(theta), by autodiff of the full loss, and the
    0/1 basis E of Fix(G) (one column per parameter)."""
    n, d = structure.shape
    objective = PopulationLoss(n=n, d=d)
    teacher = gaussian.orthonormal_teacher(structure.k, d)
    parameter = structure.parameter_of().ravel()
    basis = (parameter[:, None] == np.arange(parameter.max() + 1)[None, :]).astype(float)

    grad_of, hessian_of = jax.jit(jax.grad(objective.loss)), jax.jit(jax.hessian(objective.loss))

    def at(theta):
        weights = jnp.asarray(structure.point(theta), float)
        loss = float(objective.loss(weights, teacher))
        grad = np.asarray(grad_of(weights, teacher)).ravel()
        hess = np.asarray(hessian_of(weights, teacher)).reshape(n * d, n * d)
        return loss, basis.T @ grad, basis.T @ hess @ basis

    return at


@pytest.mark.parametrize("sizes, extra", TYPES)
def test_every_back_end_is_the_full_loss_restricted(sizes, extra):
    structure = template(sizes, sum(sizes), extra)
    at = full(structure)
    rng = np.random.default_rng(len(sizes) + extra)
    m = len(structure.parameters)
    with jax.enable_x64(True):
        for _ in range(2):
            # Generic points: no two rows parallel, where autodiff of the full loss is exact.
            theta = rng.normal(0.3, 0.6, m)
            loss, grad, hess = at(theta)
            np.testing.assert_allclose(reduced.value(structure, theta), loss, rtol=1e-12)
            np.testing.assert_allclose(reduced.gradient(structure, theta), grad, atol=1e-11)
            np.testing.assert_allclose(reduced.hessian(structure, theta), hess, atol=1e-10)
            args = (jnp.asarray(theta), jnp.asarray(structure.sizes, float), float(structure.k))
            vector = reduced.vector_loss(*args, structure.signature)
            np.testing.assert_allclose(float(vector), loss, rtol=1e-12)
            vector_grad = jax.jit(jax.grad(reduced.vector_loss), static_argnums=3)(
                *args, structure.signature
            )
            np.testing.assert_allclose(np.asarray(vector_grad), grad, atol=1e-11)
            vector_hess = jax.jit(jax.hessian(reduced.vector_loss), static_argnums=3)(
                *args, structure.signature
            )
            np.testing.assert_allclose(np.asarray(vector_hess), hess, atol=1e-10)


def test_a_wrong_basis_is_caught():
    # The check above can fail: the gradient summed over a wrong basis differs.
    structure = template((2, 4), 6)
    theta = np.random.default_rng(0).normal(0.3, 0.6, len(structure.parameters))
    with jax.enable_x64(True):
        _, grad, _ = full(structure)(theta)
    assert not np.allclose(reduced.gradient(structure, theta), grad[::-1], atol=1e-6)


def test_polish_lands_on_a_zero_of_the_reduced_gradient():
    structure = template((1, 5), 6)
    theta = structure.theta(np.eye(6) * 0.9 + 0.05)
    found, norm = None, np.inf
    for start in (theta, theta + 0.01):
        try:
            found = reduced.polish(structure, start, steps=30)
        except np.linalg.LinAlgError:
            continue
        norm = np.linalg.norm(reduced.gradient(structure, found))
        break
    assert found is not None and norm < 1e-10


@pytest.mark.parametrize("activation", ["erf", "normal_cdf", "quadratic", "tanh"])
def test_another_activation_is_its_full_loss_restricted(activation):
    # The kernel form against autodiff of the full population loss of that activation.
    structure = template((1, 2), 3, 1)
    n, d = structure.shape
    kernel = kernels.kernel(activation, nodes=40)
    objective = KernelLoss(n=n, d=d, kernel=kernel)
    parameter = structure.parameter_of().ravel()
    basis = (parameter[:, None] == np.arange(parameter.max() + 1)[None, :]).astype(float)
    theta = np.random.default_rng(3).normal(0.3, 0.6, len(structure.parameters))
    with jax.enable_x64(True):
        teacher = gaussian.orthonormal_teacher(structure.k, d)
        weights = jnp.asarray(structure.point(theta), float)
        loss = float(objective.loss(weights, teacher))
        grad = basis.T @ np.asarray(jax.grad(objective.loss)(weights, teacher)).ravel()
        hess = basis.T @ np.asarray(objective.hessian(weights, teacher)) @ basis
    np.testing.assert_allclose(reduced.value(structure, theta, kernel), loss, rtol=1e-12)
    np.testing.assert_allclose(reduced.gradient(structure, theta, kernel), grad, atol=1e-11)
    np.testing.assert_allclose(reduced.hessian(structure, theta, kernel), hess, atol=1e-10)
    # and the ReLU formula is not it
    assert abs(reduced.value(structure, theta) - loss) > 1e-3
