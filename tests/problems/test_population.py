import jax
import numpy as np
import pytest
from helpers import polish, spurious_point_k6

from sweep import config as config_module
from sweep import problems
from sweep.diagnostics.escape import min_escape_slope
from sweep.objectives import gaussian
from sweep.outcomes import Finished, StopReason
from sweep.problems.population import teacher_distance


def classify(points, reasons, losses, k):
    """Classify points (m, n, k) of the closed form with the default tolerances."""
    config = config_module.from_dict({"sweep": {"k": k, "n": points.shape[1]}})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    return problem.classify(Finished.at(points, losses, reasons))


def symmetric_saddle(k=4):
    """All student neurons equal: GD stays in that subspace and stops at a saddle."""
    teacher = gaussian.orthonormal_teacher(k)
    step = jax.jit(lambda w: w - 0.5 * gaussian.grad(w, teacher))
    weights = np.full((k, k), 0.3)
    for _ in range(3000):
        weights = step(weights)
    return np.asarray(weights)


def loss(weights, k):
    return float(gaussian.loss(weights, gaussian.orthonormal_teacher(k)))


def test_statuses_of_known_points():
    spurious = np.asarray(polish(spurious_point_k6(), gaussian.orthonormal_teacher(6)))
    permuted_teacher = np.eye(6)[[1, 0, 2, 3, 5, 4]]
    points = np.stack([permuted_teacher, spurious, spurious, spurious])
    reasons = np.array(
        [StopReason.GRAD, StopReason.GRAD, StopReason.MAX_STEPS, StopReason.NONFINITE]
    )
    losses = np.array([loss(p, 6) for p in points])
    found = classify(points, reasons, losses, 6)
    status, min_eig = found.status, found.min_eig
    assert status == ["global", "spurious", "not_converged", "diverged"]
    assert found.symmetry == ["6", "1+5", "none", "none"]
    assert found.decided_by == ["hessian", "hessian", "", ""]
    assert min_eig[0] == pytest.approx(0.25 - 1 / (2 * np.pi), abs=1e-12)
    assert min_eig[1] == pytest.approx(0.0047004, abs=1e-7)
    assert np.isnan(min_eig[2:]).all()


def test_saddle():
    point = symmetric_saddle()
    found = classify(point[None], np.array([StopReason.GRAD]), [loss(point, 4)], 4)
    assert found.status == ["saddle"] and found.min_eig[0] < -0.1


def test_wider_student_at_zero_loss_is_global():
    # w_1 + w_2 = v_1: a global minimum of a width-5 student, no permutation of the teacher.
    point = np.vstack([[0.3, 0, 0, 0], [0.7, 0, 0, 0], np.eye(4)[1:]])
    found = classify(point[None], np.array([StopReason.GRAD]), [loss(point, 4)], 4)
    assert found.status == ["global"]


def test_teacher_distance():
    teacher = np.eye(3)
    assert teacher_distance(teacher[[2, 0, 1]] + 1e-5, teacher) == pytest.approx(np.sqrt(3) * 1e-5)
    assert teacher_distance(np.ones((3, 3)), teacher) == np.inf
    assert teacher_distance(np.ones((4, 3)), teacher) == np.inf


def test_escape_neuron_decides_at_a_dead_neuron():
    # Three neurons on their teacher neurons, the fourth dead: growing it along v_4 helps.
    dead = np.vstack([np.eye(4)[:3], np.zeros((1, 4))])
    found = classify(dead[None], np.array([StopReason.GRAD]), [loss(dead, 4)], 4)
    assert found.status == ["saddle"] and found.decided_by == ["escape_neuron"]
    assert min_escape_slope(dead[:3], np.eye(4)) < -0.1


def test_no_escape_when_the_residual_is_zero():
    # A zero extra neuron beside an exact fit: no direction lowers the loss.
    assert min_escape_slope(np.eye(3), np.eye(3)) > -1e-12


def test_points_with_dead_neurons_are_classified_alike_in_a_batch_and_alone():
    # The living neurons' spectra are batched by how many neurons live: each point's
    # values must be those it gets alone, bit for bit, whatever shares its batch (a point
    # with every neuron alive gets its spectrum at its grid point, `distinct_min_eigenvalues`).
    rng = np.random.default_rng(3)
    eye = np.eye(4)
    points = np.stack([
        np.vstack([eye, np.zeros((1, 4))]),                        # 4 living: global
        np.vstack([eye[:3], np.zeros((2, 4))]),                    # 3 living: escape
        np.vstack([np.zeros((1, 4)), 0.3 + 0.1 * rng.random((4, 4))]),
        np.vstack([eye[[1, 0, 2]], np.zeros((1, 4)), eye[3:] * 0.5]),
        np.zeros((5, 4)),                                          # none living
        0.5 * eye[[0, 1, 2, 3, 3]] + 0.1 * rng.random((5, 4)),     # all living
    ])  # fmt: skip
    reasons = np.full(len(points), StopReason.GRAD)
    losses = np.array([loss(p, 4) for p in points])
    config = config_module.from_dict({"sweep": {"k": 4, "n": 5}})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    found = problem.classify(Finished.at(points, losses, reasons))
    for i, (point, value) in enumerate(zip(points, losses, strict=True)):
        status, min_eig, decided_by = problem.classify_point(point, value)
        assert (found.status[i], found.decided_by[i]) == (status, decided_by)
        if i < 5:
            assert np.array_equal(found.min_eig[i], min_eig)
        assert found.min_eig[i] == pytest.approx(min_eig, abs=1e-8)
    teacher = gaussian.orthonormal_teacher(4)
    living = points[1][:3]
    expected = np.linalg.eigvalsh(np.asarray(gaussian.hessian(living, teacher)))[0]
    assert found.min_eig[1] == pytest.approx(expected, abs=1e-12)
    assert found.min_eig[4] == np.inf and found.decided_by[4] == "escape_neuron"
    assert found.decided_by[:2] == ["escape_neuron"] * 2 and found.decided_by[5] == "hessian"
