import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.objectives import Network, gaussian, leaky

# Every option appears on both of its values, across 8 architectures.
ARCHITECTURES = [
    dict(depth=depth, biases=biases, train_output=output, alpha=0.1 * (i % 2), ntk=i % 3 == 0)
    for i, (depth, biases, output) in enumerate(
        itertools.product((2, 3), (False, True), (False, True))
    )
]


def problem(rng, net, samples=40):
    theta = jnp.asarray(rng.normal(size=net.size) * 0.7)
    inputs = jnp.asarray(rng.normal(size=(samples, net.d)))
    targets = jnp.asarray(rng.normal(size=samples))
    return theta, (inputs, targets)


def central_difference(f, theta, h=1e-6):
    """d f / d theta by central differences; f maps (P,) to a scalar or an array."""
    steps = h * jnp.eye(theta.size, dtype=jnp.float64)
    values = jax.jit(jax.vmap(f))(jnp.concatenate([theta + steps, theta - steps]))
    upper, lower = values[: theta.size], values[theta.size :]
    return np.moveaxis(np.asarray((upper - lower) / (2 * h)), 0, -1)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gradient_matches_finite_differences(rng, arch):
    net = Network(n=3, d=2, **arch)
    theta, data = problem(rng, net)
    value, grad = net.loss_and_grad(theta, data)
    assert value == pytest.approx(float(net.loss(theta, data)), rel=1e-14)
    expected = central_difference(lambda t: net.loss(t, data), theta)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("arch", [ARCHITECTURES[i] for i in (0, 3, 5, 6)])
def test_hessian_matches_finite_differences_of_the_gradient(rng, arch):
    net = Network(n=3, d=2, **arch)
    theta, data = problem(rng, net)
    hessian = np.asarray(net.hessian(theta, data))
    expected = central_difference(lambda t: net.loss_and_grad(t, data)[1], theta)
    np.testing.assert_allclose(hessian, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)


def test_layout_and_size():
    net = Network(n=4, d=3, depth=3, biases=True, train_output=True)
    names = [name for name, _, _ in net.layers()]
    assert names == ["W1", "b1", "W2", "b2", "a", "c"]
    assert net.size == 4 * 3 + 4 + 4 * 4 + 4 + 4 + 1
    blocks = net.unflatten(jnp.arange(net.size, dtype=jnp.float64))
    assert blocks["W2"].shape == (4, 4) and float(blocks["c"]) == net.size - 1


def test_plain_network_is_the_teacher_student_model(rng):
    """Depth 2, no biases, unit output weights: f(x) = sum_i relu(w_i . x), W row-major."""
    net = Network(n=3, d=4)
    weights = rng.normal(size=(3, 4))
    inputs = rng.normal(size=(10, 4))
    expected = np.maximum(inputs @ weights.T, 0).sum(axis=1)
    np.testing.assert_allclose(net.apply(jnp.asarray(weights.ravel()), inputs), expected)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_empirical_loss_tends_to_the_closed_form(alpha):
    """On many Gaussian samples the empirical loss is the population loss F (same 1/2)."""
    k, n = 3, 4
    key = jax.random.key(7)
    weights = 0.6 * jax.random.normal(key, (n, k), jnp.float64)
    teacher = gaussian.orthonormal_teacher(k)
    net = Network(n=n, d=k, alpha=alpha)
    inputs = jax.random.normal(jax.random.fold_in(key, 1), (400_000, k), jnp.float64)
    z = inputs @ teacher.T
    targets = jnp.sum(jnp.where(z > 0, z, alpha * z), axis=1)
    residual = net.apply(weights.ravel(), inputs) - targets
    samples = 0.5 * residual**2
    estimate, error = float(samples.mean()), float(samples.std() / np.sqrt(samples.size))
    exact = float(leaky.loss(weights, teacher, alpha) if alpha else gaussian.loss(weights, teacher))
    assert abs(estimate - exact) < 4 * error


def test_ntk_parameterization_is_a_rescaled_standard_network(rng):
    ntk = Network(n=5, d=2, depth=3, biases=True, train_output=True, ntk=True)
    standard = Network(n=5, d=2, depth=3, biases=True, train_output=True)
    theta, (inputs, _) = problem(rng, ntk)
    blocks = ntk.unflatten(theta)
    scaled = []
    for name, _, fan_in in ntk.layers():
        scaled.append((blocks[name] / np.sqrt(fan_in) if fan_in else blocks[name]).ravel())
    np.testing.assert_allclose(
        ntk.apply(theta, inputs), standard.apply(jnp.concatenate(scaled), inputs), rtol=1e-12
    )


@pytest.mark.parametrize("ntk", [False, True])
def test_init_scales_every_layer_by_its_fan_in(ntk):
    net = Network(n=400, d=2, depth=3, biases=True, train_output=True, ntk=ntk, bias_scale=0.5)
    blocks = net.unflatten(net.init(jax.random.key(0), np.sqrt(2 / 2)))
    # (block, its std under the standard parameterization, a tolerance for its size)
    for name, expected, rel in (
        ("W1", 1.0, 0.1),
        ("W2", np.sqrt(2 / 400), 0.01),
        ("a", np.sqrt(2 / 400), 0.15),
    ):
        fan_in = 2 if name == "W1" else 400
        if ntk:
            expected = expected * np.sqrt(fan_in)
        assert float(jnp.std(blocks[name])) == pytest.approx(expected, rel=rel)
    assert float(jnp.std(blocks["b1"])) == pytest.approx(0.5, rel=0.1)


def test_ntk_eigenvalue_is_that_of_the_jacobian_gram_matrix(rng):
    net = Network(n=6, d=1, biases=True, train_output=True)
    theta, data = problem(rng, net, samples=6)
    inputs = np.asarray(data[0])
    jacobian = central_difference(lambda t: net.apply(t, inputs), theta)  # (N, P)
    expected = np.linalg.eigvalsh(jacobian @ jacobian.T / 6)[-1]
    assert float(net.ntk_max_eigenvalue(theta, data)) == pytest.approx(expected, rel=1e-6)


def test_plain_network_starts_where_the_closed_form_run_does():
    """Same key, same first layer: sampled-data and population sweeps are paired by run."""
    from sweep.objectives.initializers import initial_weights

    key = jax.random.key(3)
    theta = Network(n=4, d=3, biases=True, train_output=True).init(key, 0.5)
    np.testing.assert_array_equal(theta[:12].reshape(4, 3), initial_weights(key, 4, 3, 0.5))


def test_ntk_eigenvalues_of_a_batch_keep_their_bits_without_the_quadratic_jacobian(rng):
    # The Jacobian's rows come one output at a time: the same numbers as jax.jacrev of all
    # outputs at once, without its N^2 intermediates (the memory peak of deep sweeps).
    net = Network(n=5, d=3, depth=3, biases=True, train_output=True)
    _, data = problem(rng, net, samples=200)
    keys = jax.random.split(jax.random.key(0), 8)
    thetas = jax.vmap(lambda key: net.init(key, 0.8))(keys)

    def with_jacrev(theta, data):
        jacobian = jax.jacrev(net.apply)(theta, data[0])
        gram = jacobian.T @ jacobian / data[0].shape[0]
        start = jnp.cos(jnp.arange(gram.shape[0], dtype=gram.dtype) * 1.618 + 0.5)

        def power_step(_, vector):
            image = gram @ vector
            return image / jnp.maximum(jnp.linalg.norm(image), jnp.finfo(gram.dtype).tiny)

        vector = jax.lax.fori_loop(0, 300, power_step, start / jnp.linalg.norm(start))
        return vector @ gram @ vector

    new = jax.jit(jax.vmap(net.ntk_max_eigenvalue, (0, None)))
    old = jax.jit(jax.vmap(with_jacrev, (0, None)))
    np.testing.assert_array_equal(np.asarray(new(thetas, data)), np.asarray(old(thetas, data)))
    memory = [f.lower(thetas, data).compile().memory_analysis() for f in (new, old)]
    if all(m is not None for m in memory):
        assert memory[0].temp_size_in_bytes * 10 < memory[1].temp_size_in_bytes
