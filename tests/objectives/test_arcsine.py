"""The arcsine kernels' written-out loss and gradient (`objectives/arcsine.py`) against
autodiff of the kernel form and against central differences, float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.objectives import KernelLoss, arcsine, gaussian, kernels


@pytest.mark.parametrize("name", ["erf", "normal_cdf"])
@pytest.mark.parametrize("n, k, d, teacher", [(6, 6, 6, "orthonormal"), (7, 5, 8, "random")])
def test_written_out_gradient_is_the_kernel_forms(name, n, k, d, teacher):
    rng = np.random.default_rng(n + k)
    with jax.enable_x64(True):
        if teacher == "orthonormal":
            rows = gaussian.orthonormal_teacher(k, d)
        else:
            rows = jnp.asarray(rng.normal(size=(k, d)))
        weights = jnp.asarray(rng.normal(size=(n, d)) / np.sqrt(d))
        kernel = kernels.kernel(name)
        value, grad = arcsine.loss_and_grad(weights, rows, *kernel.arcsine)
        objective = KernelLoss(n, d, kernel)
        expected, expected_grad = jax.value_and_grad(objective.loss)(weights, rows)
        np.testing.assert_allclose(value, expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grad, expected_grad, atol=1e-13)
        # central differences of the written-out loss itself
        step, i, j = 1e-6, n - 1, d - 2
        bump = jnp.zeros((n, d)).at[i, j].set(step)
        up = arcsine.loss_and_grad(weights + bump, rows, *kernel.arcsine)[0]
        down = arcsine.loss_and_grad(weights - bump, rows, *kernel.arcsine)[0]
        assert abs((up - down) / (2 * step) - grad[i, j]) < 1e-8
        # the training objective takes this path, and a wrong scale is caught
        assert objective.loss_and_grad(weights, rows)[0] == value
        wrong = arcsine.loss_and_grad(weights, rows, 1.0, kernel.arcsine[1])[1]
        assert not np.allclose(wrong, expected_grad, atol=1e-6)
