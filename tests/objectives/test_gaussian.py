import jax
import numpy as np
import pytest
from helpers import polish, spurious_point_k6

from sweep.objectives import PopulationLoss, gaussian, leaky
from sweep.objectives.arccos import arccos

RELU = lambda z: np.maximum(z, 0.0)  # noqa: E731


def test_kernel_matches_monte_carlo(rng):
    d = 5
    x = rng.standard_normal((2_000_000, d))
    for _ in range(3):
        w, v = rng.standard_normal(d), rng.standard_normal(d)
        mc = RELU(x @ w) * RELU(x @ v)
        stderr = mc.std() / np.sqrt(len(mc))
        assert abs(float(gaussian.kernel(w, v)) - mc.mean()) < 5 * stderr


def test_kernel_closed_forms():
    w = np.array([3.0, 4.0, 0.0])
    assert float(gaussian.kernel(w, w)) == pytest.approx(25 / 2, rel=1e-14)
    assert float(gaussian.kernel(w, -w)) == pytest.approx(0.0, abs=1e-14)
    # Orthogonal vectors: |w||v| / (2 pi).
    assert float(gaussian.kernel(w, np.array([0.0, 0.0, 2.0]))) == pytest.approx(
        10 / (2 * np.pi), rel=1e-14
    )


def test_loss_matches_monte_carlo(rng):
    k, n = 3, 4
    x = rng.standard_normal((2_000_000, k))
    weights = rng.standard_normal((n, k)) / np.sqrt(k)
    teacher = np.asarray(gaussian.orthonormal_teacher(k))
    residual = RELU(x @ weights.T).sum(1) - RELU(x @ teacher.T).sum(1)
    mc = 0.5 * residual**2
    assert abs(float(gaussian.loss(weights, teacher)) - mc.mean()) < 5 * mc.std() / np.sqrt(len(mc))


def test_loss_is_zero_at_permuted_teacher():
    teacher = gaussian.orthonormal_teacher(5)
    permuted = np.asarray(teacher)[[2, 0, 4, 1, 3]]
    assert abs(float(gaussian.loss(permuted, teacher))) < 1e-14


def central_difference_gradient(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[index] = eps
        g[index] = (f(w + e) - f(w - e)) / (2 * eps)
    return g


@pytest.mark.slow
@pytest.mark.parametrize("n,k", [(4, 4), (3, 5), (6, 4)])
def test_gradient_matches_finite_differences(n, k, rng):
    teacher = gaussian.orthonormal_teacher(k)
    weights = rng.standard_normal((n, k)) / np.sqrt(k)
    loss = lambda w: float(gaussian.loss(w, teacher))  # noqa: E731
    numeric = central_difference_gradient(loss, weights)
    value, analytic = gaussian.loss_and_grad(weights, teacher)
    assert float(value) == pytest.approx(loss(weights), abs=1e-14)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)
    np.testing.assert_allclose(analytic, jax.grad(gaussian.loss)(weights, teacher), atol=1e-13)
    # The escape test's per-term gradient adds up to the same thing.
    by_terms = gaussian.cross_gradient(weights, weights) - gaussian.cross_gradient(weights, teacher)
    np.testing.assert_allclose(analytic, by_terms, atol=1e-14)


def test_gradient_is_finite_with_parallel_neurons(rng):
    teacher = gaussian.orthonormal_teacher(3)
    weights = np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    _, g = gaussian.loss_and_grad(weights, teacher)
    assert np.all(np.isfinite(g))
    # w_1 + w_2 = v_1: a global minimum, so the gradient vanishes.
    assert np.abs(g).max() < 1e-14


@pytest.mark.slow
@pytest.mark.parametrize("n,k", [(4, 4), (5, 3)])
def test_hessian_matches_finite_differences_of_gradient(n, k, rng):
    teacher = gaussian.orthonormal_teacher(k)
    weights = rng.standard_normal((n, k)) / np.sqrt(k)
    eps = 1e-6
    flat = weights.ravel()
    columns = []
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = eps
        plus = gaussian.grad((flat + e).reshape(n, k), teacher)
        minus = gaussian.grad((flat - e).reshape(n, k), teacher)
        columns.append(np.asarray(plus - minus).ravel() / (2 * eps))
    numeric = np.stack(columns, axis=1)
    analytic = np.asarray(gaussian.hessian(weights, teacher))
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-14)
    np.testing.assert_allclose(analytic, numeric, atol=1e-7)


def test_hessian_near_identity_is_finite_and_continuous(rng):
    teacher = gaussian.orthonormal_teacher(4)
    at = np.asarray(gaussian.hessian(np.eye(4), teacher))
    near = np.asarray(gaussian.hessian(np.eye(4) + 1e-9 * rng.standard_normal((4, 4)), teacher))
    assert np.all(np.isfinite(at))
    np.testing.assert_allclose(near, at, atol=1e-7)


def test_hessian_spectrum_at_global_minimum_k6():
    eigenvalues = np.linalg.eigvalsh(gaussian.hessian(np.eye(6), gaussian.orthonormal_teacher(6)))
    assert eigenvalues[0] == pytest.approx(0.25 - 1 / (2 * np.pi), abs=1e-12)
    # Group eigenvalues that agree to 1e-9 (they are equal up to rounding).
    breaks = np.flatnonzero(np.diff(eigenvalues) > 1e-9) + 1
    groups = np.split(eigenvalues, breaks)
    distinct = np.array([g.mean() for g in groups])
    counts = [len(g) for g in groups]
    published = [0.090845, 0.287081, 0.409155, 0.889663, 1.712918, 2.065267]
    np.testing.assert_allclose(distinct, published, atol=1.5e-6)
    assert counts == [15, 5, 9, 1, 5, 1]


def test_spurious_minimum_k6():
    teacher = gaussian.orthonormal_teacher(6)
    weights = polish(spurious_point_k6(), teacher)
    value, g = gaussian.loss_and_grad(weights, teacher)
    assert float(np.linalg.norm(g)) < 1e-12
    assert float(value) == pytest.approx(0.0250806, abs=1e-7)
    assert float(gaussian.min_hessian_eigenvalue(weights, teacher)) == pytest.approx(
        0.0047004, abs=1e-7
    )


def test_fast_arccos_is_within_one_ulp_of_numpy():
    x = np.concatenate(
        [
            np.linspace(-1.0, 1.0, 200_001),
            1.0 - np.logspace(-17, 0, 500),
            -1.0 + np.logspace(-17, 0, 500),
            [0.5, -0.5, np.nextafter(0.5, 0), np.nextafter(-0.5, 0)],
        ]
    )
    fast = np.asarray(jax.jit(arccos)(x))
    exact = np.arccos(x)
    assert np.all(np.abs(fast - exact) <= np.spacing(exact))


@pytest.mark.slow
@pytest.mark.parametrize("n,k,d", [(5, 5, 5), (7, 5, 5), (4, 5, 5), (6, 4, 7)])
def test_orthonormal_fast_path_equals_general_form(n, k, d, rng):
    teacher = gaussian.orthonormal_teacher(k, d)
    for _ in range(5):
        weights = rng.standard_normal((n, d)) / np.sqrt(d)
        value, g = gaussian.loss_and_grad_orthonormal(weights, teacher)
        ref_value, ref_g = gaussian.loss_and_grad(weights, teacher)
        np.testing.assert_allclose(value, gaussian.loss(weights, teacher), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(value, ref_value, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g, ref_g, rtol=1e-11, atol=1e-14)
    # At the global minimum W = V both vanish to rounding.
    value, g = gaussian.loss_and_grad_orthonormal(teacher, teacher)
    assert abs(float(value)) < 1e-14 and float(np.max(np.abs(g))) < 1e-14


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_leaky_relu_closed_form_matches_monte_carlo(alpha, rng):
    k, n = 3, 4
    teacher = np.asarray(gaussian.orthonormal_teacher(k))
    weights = rng.standard_normal((n, k)) / np.sqrt(k)
    x = rng.standard_normal((2_000_000, k))

    def leaky_net(w):
        z = x @ w.T
        return np.where(z > 0, z, alpha * z).sum(axis=1)

    sampled = 0.5 * np.mean((leaky_net(weights) - leaky_net(teacher)) ** 2)
    closed = float(leaky.loss(weights, teacher, alpha))
    assert abs(sampled - closed) < 4e-3 * max(1.0, closed)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_leaky_gradient_and_hessian_match_finite_differences(alpha, rng):
    k, n = 3, 4
    teacher = gaussian.orthonormal_teacher(k)
    surface = PopulationLoss(n=n, d=k, alpha=alpha)
    weights = rng.standard_normal((n, k)) / np.sqrt(k)
    value, g = surface.loss_and_grad(weights, teacher)
    np.testing.assert_allclose(value, surface.loss(weights, teacher), rtol=1e-12)
    h, eps = surface.hessian(weights, teacher), 1e-6
    numeric_g = np.zeros(n * k)
    numeric_h = np.zeros((n * k, n * k))
    for i in range(n * k):
        step = np.zeros(n * k)
        step[i] = eps
        step = step.reshape(n, k)
        numeric_g[i] = (
            surface.loss(weights + step, teacher) - surface.loss(weights - step, teacher)
        ) / (2 * eps)
        plus = surface.loss_and_grad(weights + step, teacher)[1]
        minus = surface.loss_and_grad(weights - step, teacher)[1]
        numeric_h[:, i] = (np.ravel(plus) - np.ravel(minus)) / (2 * eps)
    np.testing.assert_allclose(np.ravel(g), numeric_g, atol=1e-8)
    np.testing.assert_allclose(h, numeric_h, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("n, k, d", [(6, 6, 6), (7, 5, 9)])
def test_hessian_operator_equals_the_dense_hessian(n, k, d, alpha, rng):
    objective = PopulationLoss(n=n, d=d, alpha=alpha)
    teacher = gaussian.orthonormal_teacher(k, d)
    weights = rng.standard_normal((n, d))
    weights[0] = teacher[1]  # a neuron exactly on a teacher neuron: the parallel limit
    x = rng.standard_normal((n, d))
    dense = (objective.hessian(weights, teacher) @ x.ravel()).reshape(n, d)
    np.testing.assert_allclose(
        objective.hessian_operator(weights, teacher)(x), dense, rtol=0, atol=1e-13
    )
