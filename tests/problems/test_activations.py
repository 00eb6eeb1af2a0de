"""Sweeps of the population loss with other activations, teachers and output layers:
stored losses against independent formulas, statuses, and the refusals."""

import math

import numpy as np
import pytest
from helpers import arctan
from scipy.special import erf

import sweep
from sweep import config as config_module
from sweep.config import ConfigError


def common(tmp_path, name, **settings):
    settings = {"k": "4", "seeds": 12, **settings}
    return sweep.run(out=tmp_path / name, progress=False, **settings)


def erf_loss(weights, teacher):
    """Saad & Solla's loss, written out in NumPy."""

    def kernel(a, b):
        inner = a @ b.T
        scale = np.sqrt((1 + np.sum(a * a, 1))[:, None] * (1 + np.sum(b * b, 1))[None, :])
        return 2 / np.pi * np.arcsin(inner / scale)

    return (
        0.5 * kernel(weights, weights).sum()
        - kernel(weights, teacher).sum()
        + 0.5 * kernel(teacher, teacher).sum()
    )


def quadrature_loss(fn, weights, teacher, step=0.08, reach=9.0):
    """E[(sum_i s(w_i.x) - sum_j s(v_j.x))^2] / 2 by a grid over the plane of each pair."""
    z = np.arange(-reach, reach + step / 2, step)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    weight = np.exp(-(z1**2 + z2**2) / 2) / (2 * math.pi) * step**2

    def pair(a, b):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cos = np.clip(a @ b / (na * nb), -1, 1)
        u2 = nb * (cos * z1 + math.sqrt(1 - cos * cos) * z2)
        return float(np.sum(weight * fn(na * z1) * fn(u2)))

    rows = [(w, 1.0) for w in weights] + [(v, -1.0) for v in teacher]
    return 0.5 * sum(sa * sb * pair(a, b) for a, sa in rows for b, sb in rows)


def test_an_erf_sweep_stores_saad_and_sollas_loss(tmp_path):
    runs = common(tmp_path, "erf", problem={"activation": "erf"})
    teacher = np.eye(4)
    assert set(runs["status"]) <= {"global", "spurious", "saddle"}
    assert (runs["status"] == "global").any()
    for row in runs.itertuples():
        assert row.loss == pytest.approx(erf_loss(np.reshape(row.weights, (4, 4)), teacher),
                                         abs=1e-10)  # fmt: skip
    proved = sweep.certify(tmp_path / "erf", workers=1)
    assert set(proved["certified"]) == {"proved"}


@pytest.mark.slow
def test_a_tanh_sweep_stores_the_loss_of_an_independent_quadrature(tmp_path):
    runs = sweep.run(out=tmp_path / "tanh", progress=False, k="3", seeds=4,
                     problem={"activation": "tanh"})  # fmt: skip
    assert set(runs["status"]) <= {"global", "spurious", "saddle"}
    for row in runs.itertuples():
        expected = quadrature_loss(np.tanh, np.reshape(row.weights, (3, 3)), np.eye(3))
        assert row.loss == pytest.approx(expected, abs=1e-10)


def test_a_teacher_read_from_a_file(tmp_path):
    rows = np.array([[1.0, 0.2, 0.0], [0.0, 0.8, 0.5]])
    np.save(tmp_path / "teacher.npy", rows)
    runs = sweep.run(out=tmp_path / "file", progress=False, k="2", seeds=6, problem={
        "activation": "erf", "teacher": "file", "teacher_file": str(tmp_path / "teacher.npy"),
        "d": "3"})  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "file" / "teacher_k=2_d=3.npy"), rows)
    for row in runs.itertuples():
        assert row.loss == pytest.approx(erf_loss(np.reshape(row.weights, (2, 3)), rows), abs=1e-10)
    with pytest.raises(ConfigError, match="problem.teacher_file: expected 3 rows"):
        sweep.run(out=tmp_path / "wrong", progress=False, k="3", seeds=2, problem={
            "teacher": "file", "teacher_file": str(tmp_path / "teacher.npy")})  # fmt: skip


def test_a_random_teachers_global_minimum_is_recognised(tmp_path):
    runs = common(
        tmp_path,
        "random",
        problem={"activation": "erf", "teacher": "random", "teacher_norms": [1.0, 1.5, 0.7, 1.2]},
    )
    assert (runs["status"] == "global").any()
    assert runs.loc[runs["status"] == "global", "loss"].max() < 1e-12
    assert (runs["symmetry"] == "none").all()  # no permutation symmetry of coordinates
    with pytest.raises(ConfigError, match="proofs exist for"):
        sweep.certify(tmp_path / "random")  # no catalogue of a loss without its symmetries
    teacher = np.load(tmp_path / "random" / "teacher_k=4_d=4.npy")  # kept with the sweep
    np.testing.assert_allclose(np.linalg.norm(teacher, axis=1), [1.0, 1.5, 0.7, 1.2])
    for row in runs[runs["status"] == "global"].itertuples():
        assert row.loss == pytest.approx(erf_loss(np.reshape(row.weights, (4, 4)), teacher),
                                         abs=1e-12)  # fmt: skip


@pytest.mark.slow
def test_trained_output_weights_train_with_the_population_loss(tmp_path):
    # Output weights start at one with the weights of the fixed-output runs; the step that
    # suits fixed output weights (5/k) diverges here.
    runs = common(
        tmp_path, "trained", problem={"output": "trained"}, optimizer={"step_size": "1/k"}
    )
    assert np.shape(runs["weights"].iloc[0]) == (4 * 5,)  # each row, then its output weight
    assert set(runs["status"]) <= {"global", "spurious", "saddle", "undecided"}
    assert (runs["status"] == "global").any()
    erf = common(
        tmp_path,
        "trained_erf",
        problem={"output": "trained", "activation": "erf"},
        optimizer={"step_size": "1/k"},
    )
    assert set(erf["status"]) <= {"global", "spurious", "saddle"}


def test_a_grid_over_activations(tmp_path):
    runs = sweep.run(out=tmp_path / "grid", progress=False, k="4", seeds=6,
                     grid={"problem.activation": ["relu", "erf"]})  # fmt: skip
    assert sorted(runs["problem.activation"].unique()) == ["erf", "relu"]


def test_a_users_activation_by_path_and_by_function(tmp_path):
    by_function = sweep.run(
        out=tmp_path / "mine",
        progress=False,
        k="2",
        seeds=3,
        activation=arctan,
        problem={"quadrature_nodes": 40},
    )
    by_path = sweep.run(
        out=tmp_path / "path",
        progress=False,
        k="2",
        seeds=3,
        problem={"activation": "helpers.arctan", "quadrature_nodes": 40},
    )
    assert len(by_function) == 3
    assert list(by_function["loss"]) == list(by_path["loss"])
    with pytest.raises(ConfigError, match="not importable"):
        sweep.run(out=tmp_path / "lambda", k="2", seeds=3, activation=lambda z: z)


def test_refusals_name_the_field():
    with pytest.raises(ConfigError, match="problem.activation: expected one of relu"):
        config_module.load(None, {"problem.activation": "tahn"})
    with pytest.raises(ConfigError, match="sweep.n: expected n = k for activation sigmoid"):
        config_module.load(None, {"problem.activation": "sigmoid", "sweep.n": "k+1"})
    with pytest.raises(ConfigError, match="problem.alpha: expected 0 for activation erf"):
        config_module.load(None, {"problem.activation": "erf", "problem.alpha": 0.1})
    with pytest.raises(ConfigError, match="relu or leaky_relu for problem.kind = empirical"):
        config_module.load(None, {"problem.activation": "erf", "problem.kind": "empirical"})


def test_a_bad_activation_path_fails_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="problem.activation: 'no_module.fn'"):
        sweep.run(
            out=tmp_path / "bad",
            progress=False,
            k="2",
            seeds=2,
            problem={"activation": "no_module.fn"},
        )
    with pytest.raises(ConfigError, match="s\\(0\\) != 0 .* got n = 3"):
        sweep.run(
            out=tmp_path / "wide",
            progress=False,
            k="2",
            n="k+1",
            seeds=2,
            problem={"activation": "jax.nn.sigmoid"},
        )


def test_the_erf_formula_in_this_file_is_the_expectation():
    a, b = np.array([[0.6, -0.8, 0.3]]), np.array([[0.2, 0.9, -0.4]])
    expected = quadrature_loss(lambda u: erf(u / math.sqrt(2)), a, b)
    assert erf_loss(a, b) == pytest.approx(expected, abs=1e-12)
