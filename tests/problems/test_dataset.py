import dataclasses

import numpy as np
import pytest

from sweep import config as config_module
from sweep.problems import sampling


def cfg(**problem):
    return config_module.from_dict(
        {"sweep": {"k": 3, "n": "k,k+2"}, "problem": {"kind": "empirical", **problem}}
    )


def test_data_is_shared_by_widths_and_fixed_by_the_seed():
    config = cfg(samples=50, label_noise=0.1)
    narrow, wide = config_module.cells(config)
    a = sampling.make(config.problem, narrow, seed=0)
    b = sampling.make(config.problem, wide, seed=0)
    c = sampling.make(config.problem, narrow, seed=1)
    for left, right in zip(a.train + a.test, b.train + b.test, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a.train[0], c.train[0])
    assert a.train[0].shape == (50, 3) and a.test[0].shape == (10000, 3)


def test_orthonormal_teacher_labels_and_noise():
    config = cfg(samples=20000, label_noise=0.1)
    data = sampling.make(config.problem, config_module.cells(config)[0], seed=0)
    inputs, targets = data.train
    clean = np.maximum(np.asarray(inputs), 0).sum(axis=1)  # V = I_3: sum_j relu(x_j)
    np.testing.assert_allclose(data.test[1], np.maximum(data.test[0], 0).sum(axis=1))
    assert np.std(targets - clean) == pytest.approx(0.1, rel=0.03)


def test_uniform_data_and_random_teacher():
    config = cfg(samples=2000, data="uniform", teacher="random", d="k+2")
    cell = config_module.cells(config)[0]
    data = sampling.make(config.problem, cell, seed=0)
    inputs, targets = data.train
    assert inputs.shape == (2000, 5) and -1 <= float(inputs.min()) and float(inputs.max()) <= 1
    np.testing.assert_allclose(np.linalg.norm(data.teacher, axis=1), 1.0)
    np.testing.assert_allclose(targets, np.maximum(inputs @ data.teacher.T, 0).sum(axis=1))


def test_points_are_taken_as_given():
    config = config_module.from_dict(
        {
            "sweep": {"k": 0, "n": 4},
            "problem": {
                "kind": "empirical",
                "data": "points",
                "teacher": "targets",
                "d": 1,
                "points": [-2.0, 1.0, 3.0],
                "targets": [1.0, 0.0, 2.0],
            },
            "optimizer": {"step_size": 0.1},
        }
    )
    data = sampling.make(config.problem, config_module.cells(config)[0], seed=0)
    np.testing.assert_array_equal(data.train[0], [[-2.0], [1.0], [3.0]])
    np.testing.assert_array_equal(data.train[1], [1.0, 0.0, 2.0])
    assert data.teacher is None
    noisy = dataclasses.replace(config.problem, label_noise=0.5)
    noisy_data = sampling.make(noisy, config_module.cells(config)[0], seed=0)
    assert not np.array_equal(noisy_data.train[1], data.train[1])
    np.testing.assert_array_equal(noisy_data.test[1], data.train[1])  # test: noiseless
