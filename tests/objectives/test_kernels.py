"""The activation kernels against closed forms, independent quadratures, finite
differences and the ReLU formulas of `gaussian.py` and `leaky.py`."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from sweep.objectives import KernelLoss, gaussian, kernels, leaky


def gram(norm_a, norm_b, cos):
    return jnp.asarray(norm_a**2), jnp.asarray(norm_b**2), jnp.asarray(norm_a * norm_b * cos)


def trapezoid(fn, norm_a, norm_b, cos, step=0.05, reach=9.0):
    """E[s(u1) s(u2)] by the trapezoid rule on a square of the plane, in a rotated frame:
    x = (z1, z2) with a = |a| (cos h, sin h), b = |b| (cos h, -sin h) (not the rule of
    `kernels.py`, whose frame follows a)."""
    half = math.acos(cos) / 2
    z = np.arange(-reach, reach + step / 2, step)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    u1 = norm_a * (math.cos(half) * z1 + math.sin(half) * z2)
    u2 = norm_b * (math.cos(half) * z1 - math.sin(half) * z2)
    weight = np.exp(-(z1**2 + z2**2) / 2) / (2 * math.pi) * step**2
    return float(np.sum(weight * fn(u1) * fn(u2)))


POINTS = [(1.0, 1.0, 0.3), (0.5, 1.2, -0.7), (1.3, 0.8, 0.95), (0.9, 1.0, 0.0)]


@pytest.mark.parametrize("norm_a, norm_b, cos", POINTS)
def test_the_erf_closed_form_is_the_expectation_and_so_is_the_quadrature(norm_a, norm_b, cos):
    exact = float(kernels.Erf().pairs(*gram(norm_a, norm_b, cos)))
    independent = trapezoid(lambda u: erf(u / math.sqrt(2)), norm_a, norm_b, cos)
    rule = kernels.Quadrature("erf", lambda z: jax.scipy.special.erf(z / math.sqrt(2)))
    assert independent == pytest.approx(exact, rel=1e-12, abs=1e-14)
    assert float(rule.pairs(*gram(norm_a, norm_b, cos))) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu", "silu"])
def test_quadrature_kernels_agree_with_an_independent_rule(name):
    fn = kernels.ACTIVATIONS[name]
    rule = kernels.kernel(name)
    for norm_a, norm_b, cos in POINTS:
        found = float(rule.pairs(*gram(norm_a, norm_b, cos)))
        expected = trapezoid(lambda u: np.asarray(fn(jnp.asarray(u))), norm_a, norm_b, cos)
        assert found == pytest.approx(expected, rel=1e-11, abs=1e-14)


def test_closed_forms_of_the_polynomial_and_cdf_activations():
    for name, fn in [("linear", lambda u: u), ("quadratic", lambda u: u * u),
                     ("normal_cdf", lambda u: (1 + erf(u / math.sqrt(2))) / 2)]:  # fmt: skip
        for norm_a, norm_b, cos in POINTS:
            found = float(kernels.kernel(name).pairs(*gram(norm_a, norm_b, cos)))
            assert found == pytest.approx(trapezoid(fn, norm_a, norm_b, cos), rel=1e-11)


def test_a_wrong_kernel_is_caught_by_the_independent_rule():
    found = float(kernels.kernel("tanh").pairs(*gram(1.0, 1.0, 0.3)))
    assert found != pytest.approx(trapezoid(np.sin, 1.0, 1.0, 0.3), rel=1e-6)


def test_diagonals_are_the_pairs_formula_at_a_vector_with_itself():
    for name in ["relu", "erf", "normal_cdf", "linear", "quadratic", "tanh"]:
        rule = kernels.kernel(name)
        s = jnp.asarray(1.7)
        assert float(rule.diagonal(s)) == pytest.approx(float(rule.pairs(s, s, s)), rel=1e-12)


def test_price_derivatives_match_finite_differences():
    rule = kernels.kernel("tanh")
    point = np.array([1.1, 0.8, 0.5])
    grad = np.asarray(jax.grad(lambda x: rule.pairs(*x))(jnp.asarray(point)))
    hess = np.asarray(jax.hessian(lambda x: rule.pairs(*x))(jnp.asarray(point)))
    h = 1e-5
    for i in range(3):
        step = np.eye(3)[i] * h
        central = (rule.pairs(*(point + step)) - rule.pairs(*(point - step))) / (2 * h)
        assert grad[i] == pytest.approx(float(central), rel=1e-8)
        slope = (
            jax.grad(lambda x: rule.pairs(*x))(jnp.asarray(point + step))
            - jax.grad(lambda x: rule.pairs(*x))(jnp.asarray(point - step))
        ) / (2 * h)
        np.testing.assert_allclose(hess[i], np.asarray(slope), rtol=1e-6, atol=1e-9)


def random_points(n, d, seed):
    return jax.random.normal(jax.random.key(seed), (n, d), jnp.float64) / math.sqrt(d)


def test_the_relu_kernel_loss_is_the_analytic_loss_with_its_gradient_and_hessian():
    teacher = gaussian.orthonormal_teacher(4, 5)
    weights = random_points(5, 5, 0)
    objective = KernelLoss(5, 5, kernels.kernel("relu"))
    value, grad = objective.loss_and_grad(weights, teacher)
    expected, expected_grad = gaussian.loss_and_grad(weights, teacher)
    assert float(value) == pytest.approx(float(expected), rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(
        objective.hessian(weights, teacher),
        gaussian.hessian(weights, teacher),
        rtol=1e-9,
        atol=1e-11,
    )
    leaky_loss = KernelLoss(5, 5, kernels.kernel("leaky_relu", alpha=0.2))
    assert float(leaky_loss.loss(weights, teacher)) == pytest.approx(
        float(leaky.loss(weights, teacher, 0.2)), rel=1e-13
    )


def test_smooth_losses_have_finite_derivatives_at_zero_and_parallel_neurons():
    teacher = gaussian.orthonormal_teacher(3)
    weights = jnp.asarray([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    for name in ["erf", "tanh", "quadratic"]:
        objective = KernelLoss(3, 3, kernels.kernel(name, 48))
        _, grad = objective.loss_and_grad(weights, teacher)
        hessian = objective.hessian(weights, teacher)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hessian))


def test_the_hessian_operator_is_the_hessian():
    teacher = jax.random.normal(jax.random.key(3), (3, 4), jnp.float64)
    params = random_points(4, 5, 1)  # trained output weights in the last column
    objective = KernelLoss(4, 4, kernels.kernel("erf"), trained_output=True)
    x = random_points(4, 5, 2)
    product = objective.hessian_operator(params, teacher)(x)
    np.testing.assert_allclose(
        np.ravel(product), objective.hessian(params, teacher) @ np.ravel(x), rtol=1e-10
    )


def test_trained_output_weights_of_one_give_the_fixed_output_loss():
    teacher = gaussian.orthonormal_teacher(3)
    weights = random_points(4, 3, 5)
    fixed = KernelLoss(4, 3, kernels.kernel("erf"))
    trained = KernelLoss(4, 3, kernels.kernel("erf"), trained_output=True)
    params = jnp.concatenate([weights, jnp.ones((4, 1))], axis=1)
    assert float(trained.loss(params, teacher)) == float(fixed.loss(weights, teacher))
    doubled = params.at[:, 3].set(2.0)
    # a.a K: doubling every output weight of a student with no teacher term quadruples it
    assert float(trained.loss(doubled, teacher * 0)) == pytest.approx(
        4 * float(fixed.loss(weights, teacher * 0)), rel=1e-12
    )


def test_a_users_function_by_path_is_the_named_kernel():
    by_path = kernels.kernel("jax.numpy.tanh")
    assert float(by_path.pairs(*gram(1.0, 1.0, 0.3))) == float(
        kernels.kernel("tanh").pairs(*gram(1.0, 1.0, 0.3))
    )
    with pytest.raises(ValueError, match="names no function"):
        kernels.kernel("jax.numpy.no_such_thing")
