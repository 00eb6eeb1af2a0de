"""The basin finish and the matrix-free polish against plain gradient descent and the
dense Newton polish, and the basin test refusing points it must not take."""

import jax
import numpy as np
import pytest

from sweep.diagnostics.spectrum import (
    distinct_min_eigenvalues,
    matrix_free_min_eigenvalues,
    min_eigenvalues,
)
from sweep.finishes import basin, polish
from sweep.objectives import PopulationLoss, gaussian
from sweep.objectives.arccos import arccos  # noqa: F401 (jit warm-up shared with others)
from sweep.symmetry.canonical import canonical_form

K = 6
TEACHER = gaussian.orthonormal_teacher(K)
OBJECTIVE = PopulationLoss(n=K, d=K)
STEP = 5 / K


def descend(weights, until, max_steps=100_000):
    """Plain GD at step 5/k until |grad| <= until; returns (weights, steps)."""
    step = jax.jit(lambda w: OBJECTIVE.loss_and_grad(w, TEACHER))
    for t in range(max_steps):
        _, grad = step(weights)
        if np.linalg.norm(grad) <= until:
            return np.asarray(weights), t
        weights = weights - STEP * grad
    raise AssertionError("GD did not get there")


@pytest.fixture(scope="module")
def minima():
    """Two runs of k = 6 at |grad| <= 1e-4 and where GD itself stops (1e-12)."""
    rng = np.random.default_rng(3)
    found = []
    for _ in range(2):
        start = rng.standard_normal((K, K)) / np.sqrt(K)
        early, early_steps = descend(start, 1e-4)
        end, end_steps = descend(start, 1e-12)
        found.append((early, early_steps, end, end_steps))
    return found


@pytest.mark.slow
def test_basin_finish_lands_where_gradient_descent_ends(minima):
    early = np.stack([m[0] for m in minima])
    found = basin.finish_runs(early, TEACHER, np.full(len(early), STEP), 1e-12, OBJECTIVE)
    assert found.accepted.all() and (found.grad_norm <= 1e-12).all()
    for (_, early_steps, end, end_steps), point, spared in zip(
        minima, found.weights, found.spared, strict=True
    ):
        np.testing.assert_allclose(point, end, rtol=0, atol=1e-9)
        # The linear rate's prediction of the steps GD still needed.
        assert abs(early_steps + spared - end_steps) <= max(2, 0.01 * end_steps)
    dense = np.linalg.eigvalsh(
        np.asarray(jax.vmap(OBJECTIVE.hessian, (0, None))(found.weights, TEACHER))
    )
    np.testing.assert_allclose(found.min_eig, dense[:, 0], rtol=1e-6)
    np.testing.assert_allclose(found.max_eig, dense[:, -1], rtol=1e-6)


def test_a_runs_basin_finish_does_not_depend_on_its_batch(minima):
    """The finish splits a call's runs over the devices (padding to their count); a run
    gets the same result, bit for bit, alone or beside others."""
    early = np.stack([m[0] for m in minima] + [minima[0][0] + 1e-3])
    steps = np.full(len(early), STEP)
    together = basin.finish_runs(early, TEACHER, steps, 1e-12, OBJECTIVE)
    for i in range(len(early)):
        alone = basin.finish_runs(early[i : i + 1], TEACHER, steps[:1], 1e-12, OBJECTIVE)
        for field, value in zip(together, alone, strict=True):
            np.testing.assert_array_equal(field[i], value[0])


def test_basin_test_refuses_saddles_and_far_points(minima):
    # A saddle: the symmetric point with every neuron at the teacher's mean direction.
    saddle = np.full((K, K), 1.0 / K)
    far = minima[0][0] + 0.3 * np.random.default_rng(0).standard_normal((K, K))
    # A step size at which GD would not contract at the minimum (s * Lambda > 2).
    points = np.stack([saddle, far, minima[0][0]])
    steps = np.array([STEP, STEP, 50.0])
    found = basin.finish_runs(points, TEACHER, steps, 1e-12, OBJECTIVE)
    assert not found.accepted.any()
    np.testing.assert_array_equal(found.weights, points)  # untouched


def test_matrix_free_polish_agrees_with_the_dense_polish():
    k, n = 6, 7
    objective = PopulationLoss(n=n, d=k)
    teacher = gaussian.orthonormal_teacher(k)
    rng = np.random.default_rng(1)
    starts = []
    step = jax.jit(lambda w: objective.loss_and_grad(w, teacher))
    for _ in range(3):
        w = rng.standard_normal((n, k)) / np.sqrt(k)
        for _ in range(1500):
            w = w - 5 / k * step(w)[1]
        starts.append(np.asarray(w))
    starts = np.stack(starts)
    point, loss, grad_norm, _, converged, hvps = polish.damped_newton_cg(
        starts, teacher, 1e-12, objective
    )
    assert np.asarray(converged).all() and (np.asarray(grad_norm) <= 1e-12).all()
    for start, value in zip(starts, np.asarray(loss), strict=True):
        dense = polish.newton_polish(start, teacher, 1e-12, objective)
        assert bool(dense.converged)
        np.testing.assert_allclose(value, float(dense.loss), rtol=0, atol=1e-12)
    assert (np.asarray(hvps) > 0).all()


def test_distinct_spectra_equal_each_points_own():
    """The spurious minimum of k = 6 (Safran & Shamir) reached with its neurons and
    coordinates permuted is one distinct point; the global minimum is another."""
    rng = np.random.default_rng(2)
    w = np.full((K, K), -0.050413)  # the published point to 6 decimals, then GD
    w[:, 0] = 0.308011
    w[np.arange(1, K), np.arange(1, K)] = 0.986704
    w[0] = [-0.601512] + [0.224516] * 5
    spurious = descend(w, 1e-12)[0]
    rows, columns = rng.permutation(K), rng.permutation(K)
    teacher = np.eye(K)[rng.permutation(K)] + 1e-13 * rng.standard_normal((K, K))
    points = np.stack([spurious, spurious[rows][:, columns], teacher, np.eye(K)])
    got, computed = distinct_min_eigenvalues(points, TEACHER, OBJECTIVE, canonical_form)
    own = min_eigenvalues(points, TEACHER, OBJECTIVE)
    np.testing.assert_allclose(got, own, rtol=1e-7)
    assert computed == 2


def test_lanczos_smallest_eigenvalue_agrees_with_the_dense_one():
    """The matrix-free path classification takes above DENSE_LIMIT parameters, checked
    against the dense one where both are cheap, with far fewer steps than parameters."""
    k = 10
    objective = PopulationLoss(n=k, d=k)
    teacher = gaussian.orthonormal_teacher(k)
    rng = np.random.default_rng(4)
    step = jax.jit(lambda w: w - 5 / k * objective.loss_and_grad(w, teacher)[1])
    points = []
    for _ in range(2):
        w = rng.standard_normal((k, k)) / np.sqrt(k)
        points.append(np.asarray(w))  # not a critical point: an indefinite Hessian
        for _ in range(3000):
            w = step(w)
        points.append(np.asarray(w))
    points = np.stack(points)
    dense = min_eigenvalues(points, teacher, objective)
    lanczos = matrix_free_min_eigenvalues(points, teacher, objective, steps=60)
    assert dense.min() < 0 < dense.max()
    np.testing.assert_allclose(lanczos, dense, rtol=0, atol=1e-9)


def test_checkpoint_polish_is_matrix_free_above_the_dense_limit(monkeypatch):
    """Above krylov.DENSE_LIMIT parameters the checkpoint polish uses Hessian-vector
    products (a dense eigendecomposition per iteration is out of reach at k = 100); both
    paths finish the same run on the same minimum."""
    from sweep import config as config_module
    from sweep import problems
    from sweep.problems import base

    config = config_module.from_dict({"sweep": {"k": "6", "n": "k+1", "seeds": 1}})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    rng = np.random.default_rng(5)
    teacher, objective = problem.data.train, problem.objective
    step = jax.jit(lambda w: objective.loss_and_grad(w, teacher))
    w = rng.standard_normal((7, 6)) / np.sqrt(6)
    for _ in range(1500):
        w = w - 5 / 6 * step(w)[1]
    dense = problem.finish(np.asarray(w))
    monkeypatch.setattr(base, "DENSE_LIMIT", 10)
    free = problem.finish(np.asarray(w))
    assert dense.converged and free.converged
    assert free.grad_norm <= config.stop.grad_tol
    assert abs(free.loss - dense.loss) <= 1e-12
