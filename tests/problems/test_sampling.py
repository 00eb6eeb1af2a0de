"""Empirical problems end to end: classification, minibatches, steps, reproducibility."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from sweep import config as config_module
from sweep import problems
from sweep.engine import optimizers
from sweep.engine.pauses import settle
from sweep.engine.scheduler import Engine, train_spec
from sweep.kinks import finish_shallow
from sweep.objectives import Network, gaussian
from sweep.objectives.initializers import run_key
from sweep.outcomes import Finished, StopReason
from sweep.problems import dataset, sampling

CONFIGS = Path(__file__).parents[2] / "configs"


def holzmuller(**overrides):
    return config_module.load(CONFIGS / "holzmuller_1d.toml", overrides)


def sampled(**overrides):
    """A small realizable problem: k = 3 teacher, 64 Gaussian points."""
    raw = {
        "sweep": {"k": 3, "n": "k", "seeds": 8, "shard_size": 4},
        "problem": {"kind": "empirical", "samples": 64, "test_samples": 256},
        "optimizer": {"step_size": "2/k"},
        "stop": {"max_steps": 3000, "polish_after": 0},
        "engine": {"segment_steps": 64},
    }
    config = config_module.from_dict(raw)
    return config_module.from_dict(config.to_raw(), overrides)


def test_linear_regression_error_of_the_holzmuller_points():
    # Each side is (-1, 2, -1) or (1, -2, 1): the best line is flat at 0, error 6 per side.
    inputs = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    targets = np.array([-1.0, 2.0, -1.0, 1.0, -2.0, 1.0])
    assert dataset.linear_regression_error(inputs, targets) == pytest.approx(12 / 12)
    assert dataset.linear_regression_error(inputs, 2 * inputs + np.sign(inputs)) < 1e-28


def _flat_net(first_bias):
    """Kinks at +-0.5 (between the half-lines): the net is 0 on every point of the data."""
    net = Network(n=4, d=1, biases=True, train_output=True)
    theta = np.concatenate(
        [[1, 1, -1, -1], [first_bias, 0.5, -0.5, 0.5], [1, -1, 1, -1], [1.0]]
    ).astype(float)
    return net, theta


def test_essentially_linear_detected_and_a_kink_in_the_data_is_not():
    config = holzmuller(**{"sweep.n": "4"})
    cell = config_module.cells(config)[0]
    data = sampling.make(config.problem, cell, config.seed)
    net, linear = _flat_net(-0.5)
    _, kinked = _flat_net(-1.5)  # neuron 1's kink moves to x = 1.5, inside [1, 3]
    points = np.stack([linear, kinked])
    loss = np.array([float(net.loss(jnp.asarray(t), data.train)) for t in points])
    assert loss[0] == pytest.approx(1.0)  # the piecewise linear regression error
    problem = problems.for_cell(config, cell)
    found = problem.classify(Finished.at(points, loss))
    assert found.essentially_linear == [True, False]
    assert found.kink_entered == [False, True]
    assert [bool(net.watch(jnp.asarray(t), data.train)) for t in points] == [False, True]
    # A kink that was inside the data earlier in training rules the run out as well.
    again = problem.classify(Finished.at(points, loss, watched=[True, False]))
    assert again.essentially_linear == [False, False]
    assert found.linear_loss == [pytest.approx(1.0)] * 2
    # He init starts with zero biases, so the movement is the largest final bias.
    assert found.bias_movement[1] == pytest.approx(1.5)


@pytest.mark.slow
def test_trained_holzmuller_runs_are_classified(tmp_path):
    from sweep.commands.runner import RunOptions, run_sweep

    config = holzmuller(**{"sweep.n": "16", "sweep.seeds": 8, "stop.max_steps": 20000})
    run_sweep(config, tmp_path / "h", RunOptions(progress=False, log=lambda *_: None))
    rows = pd.read_parquet(tmp_path / "h")
    assert len(rows) == 8 and rows["essentially_linear"].notna().all()
    linear = rows[rows["essentially_linear"]]
    assert len(linear) > 0
    np.testing.assert_allclose(linear["loss"], linear["linear_loss"], rtol=1e-3)
    assert (rows["bias_movement"] >= 0).all() and (rows["step_size"] != 1.0).all()
    # Step size = 1 / lambda_max of the NTK Gram matrix at each run's own initial point.
    cell = config_module.cells(config)[0]
    net = problems.for_cell(config, cell).objective
    data = sampling.make(config.problem, cell, config.seed).train
    for run, step in zip(rows["run"][:3], rows["step_size"][:3], strict=True):
        theta = net.init(run_key(config.seed, 0, 16, 1, run), cell.init_scale)
        assert step == pytest.approx(1 / float(net.ntk_max_eigenvalue(theta, data)))


def trained(config, runs, batch_size):
    config = config_module.from_dict(config.to_raw(), {"engine.batch_size": batch_size})
    cell = config_module.cells(config)[0]
    parts = list(Engine(config).train(problems.for_cell(config, cell), runs))
    order = np.argsort(np.concatenate([p.runs for p in parts]))
    return {
        key: np.concatenate([getattr(p, key) for p in parts])[order]
        for key in ("runs", "weights", "steps", "loss", "reason")
    }


@pytest.mark.slow
def test_sampled_sgd_runs_are_reproducible_run_by_run():
    config = sampled(**{"optimizer.batch_size": 16})
    batched = trained(config, range(6), batch_size=8)
    assert set(batched["reason"]) <= {StopReason.LOSS, StopReason.GRAD, StopReason.MAX_STEPS}
    assert (batched["steps"] % 4 == 0).all()  # whole epochs of 64 / 16 steps
    for run in (0, 5):
        single = trained(config, [run], batch_size=1)
        assert single["steps"][0] == batched["steps"][run]
        np.testing.assert_allclose(single["weights"][0], batched["weights"][run], atol=1e-12)
    again = trained(config, reversed(range(6)), batch_size=4)
    np.testing.assert_array_equal(again["weights"], batched["weights"])


def test_one_minibatch_of_all_points_is_gradient_descent():
    full = trained(sampled(**{"stop.max_steps": 200}), range(4), batch_size=4)
    one_batch = trained(
        sampled(**{"stop.max_steps": 200, "optimizer.batch_size": 64}), range(4), batch_size=4
    )
    np.testing.assert_array_equal(full["steps"], one_batch["steps"])
    np.testing.assert_allclose(full["weights"], one_batch["weights"], atol=1e-10)


def test_minibatches_move_differently_from_the_full_batch():
    full = trained(sampled(**{"stop.max_steps": 40}), range(2), batch_size=2)
    sgd = trained(
        sampled(**{"stop.max_steps": 40, "optimizer.batch_size": 8}), range(2), batch_size=2
    )
    assert np.abs(full["weights"] - sgd["weights"]).max() > 1e-3


def test_test_loss_is_the_closed_form_for_the_plain_network(tmp_path):
    from sweep.commands.runner import RunOptions, run_sweep

    config = sampled()
    run_sweep(config, tmp_path / "s", RunOptions(progress=False, log=lambda *_: None))
    rows = pd.read_parquet(tmp_path / "s")
    teacher = gaussian.orthonormal_teacher(3)
    for row in rows.itertuples():
        assert row.test_loss == pytest.approx(
            float(gaussian.loss(np.reshape(row.weights, (3, 3)), teacher)), rel=1e-12
        )
    assert set(rows["status"]) <= {"global", "spurious", "saddle", "not_converged"}
    assert (rows[rows["status"] == "global"]["loss"] <= 1e-8).all()
    assert rows["essentially_linear"].isna().all() and rows["minibatch"].eq(0).all()


def test_deep_students_use_the_test_set():
    config = sampled(**{"problem.depth": 3, "problem.biases": True, "problem.output": "trained"})
    cell = config_module.cells(config)[0]
    problem = problems.for_cell(config, cell)
    net = problem.objective
    theta = np.asarray(net.init(run_key(0, 3, 3, 3, 0), cell.init_scale))[None]
    expected = float(net.loss(theta[0], problem.data.test))
    assert problem.test_losses(theta)[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "losses,expected",
    [
        ((0.5, 0.5 * (1 - 1e-8)), StopReason.PLATEAU),  # fell by less than plateau_tol
        ((0.5, 0.4), StopReason.PAUSED),  # still falling: go on
    ],
)
def test_a_loss_plateau_stops_a_run(losses, expected):
    config = sampled(**{"stop.polish_after": 10, "stop.plateau_tol": 1e-6})
    # The plateau test alone (no polish).
    config = dataclasses.replace(config, stop=dataclasses.replace(config.stop, polish_after=0))
    problem = problems.for_cell(config, config_module.cells(config)[0])
    previous = {}
    for loss in losses:
        out = Finished(
            runs=np.array([7]),
            weights=np.zeros((1, 9)),
            steps=np.array([10]),
            newton_steps=np.zeros(1, int),
            step_size=np.ones(1),
            loss=np.array([loss]),
            grad_norm=np.array([1e-3]),
            reason=np.array([StopReason.PAUSED], np.int8),
            watched=np.zeros(1, bool),
            trained_loss=np.full(1, np.nan),
            predicted_steps=np.full(1, -1),
            flow=np.full((1, 4), np.nan),
        )
        settle(out, problem, previous)
    assert out.reason[0] == expected and previous[7] == losses[-1]


@pytest.mark.parametrize(
    "schedule,step,expected",
    [
        ("constant", 500, 1.0),
        ("cosine", 0, 1.0),
        ("cosine", 500, 0.5),
        ("cosine", 1000, 0.0),
        ("inverse_time", 100, 0.5),
    ],
)
def test_schedules(schedule, step, expected):
    config = sampled(
        **{"optimizer.schedule": schedule, "optimizer.decay_steps": 100, "stop.max_steps": 1000}
    )
    spec = train_spec(problems.for_cell(config, config_module.cells(config)[0]))
    assert float(optimizers.schedule(spec, jnp.asarray(step))) == pytest.approx(expected, abs=1e-15)


@pytest.mark.slow
def test_deep_students_with_ntk_steps_train_on_several_devices(tmp_path):
    """Regression: LAPACK eigensolvers batched on several CPU devices at once deadlocked
    XLA's shared thread pool at the start of NTK-relative runs; the sweep hung for good."""
    import os
    import subprocess
    import sys

    argv = [
        sys.executable, "-m", "sweep", "run", str(CONFIGS / "deep_students.toml"),
        "--k", "3", "--n", "k", "--seeds", "16", "--batch-size", "8", "--no-progress",
        "--set", "stop.max_steps=200", "--out", str(tmp_path / "deep"),
    ]  # fmt: skip
    # 2 devices with 4 runs each hung every time (4 devices with 2 each did not).
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "deep")) == 16


@pytest.mark.slow
def test_replay_of_sgd_runs_ends_where_the_sweep_did(tmp_path, capsys):
    from sweep.commands.cli import main
    from sweep.commands.runner import RunOptions, run_sweep

    config = sampled(
        **{"optimizer.batch_size": 16, "stop.polish_after": 200, "stop.plateau_tol": 1e-6}
    )
    run_sweep(config, tmp_path / "sgd", RunOptions(progress=False, log=lambda *_: None))
    rows = pd.read_parquet(tmp_path / "sgd")
    for run in rows.sort_values("steps")["run"].iloc[[0, -1]]:  # the shortest, the longest
        assert (
            main(["replay", str(tmp_path / "sgd"), "--k", "3", "--n", "3", "--run", str(run)]) == 0
        )
        assert "matches the stored row" in capsys.readouterr().out
        history = pd.read_parquet(tmp_path / "sgd" / "_replay" / f"k03-n03-r{run:07d}.parquet")
        assert history["step"].iloc[-1] == rows.set_index("run").loc[run, "steps"]


@pytest.mark.slow
def test_a_kink_inside_the_data_at_any_step_is_recorded(tmp_path):
    from sweep.commands.runner import RunOptions, run_sweep

    config = holzmuller(
        **{"sweep.n": "16", "sweep.seeds": 12, "stop.max_steps": 500, "init.bias_scale": 1.0}
    )
    run_sweep(config, tmp_path / "b", RunOptions(progress=False, log=lambda *_: None))
    rows = pd.read_parquet(tmp_path / "b").sort_values("run")
    cell = config_module.cells(config)[0]
    net = problems.for_cell(config, cell).objective
    data = sampling.make(config.problem, cell, config.seed).train
    at_start = [
        bool(net.watch(net.init(run_key(0, 0, 16, 1, r), cell.init_scale), data))
        for r in rows["run"]
    ]
    assert any(at_start)  # random biases put kinks in the data from the start
    assert (rows["kink_entered"] | ~np.array(at_start)).all()
    assert not (rows["essentially_linear"] & rows["kink_entered"]).any()


def test_sgd_is_finished_only_where_it_stops():
    config = sampled(**{"optimizer.batch_size": 16, "stop.polish_after": 20000})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    assert problem.first_checkpoint() == 20000  # SGD keeps its checkpoints
    cell = config_module.cells(config)[0]
    theta = np.asarray(problem.objective.init(run_key(config.seed, 3, 3, cell.d, 0), 1.0))
    waiting = problem.finish(theta, 0.1, final=False)
    assert not waiting.converged and np.array_equal(waiting.weights, theta)
    # Full batch, one hidden layer: the first finish comes early.
    full = sampled(**{"stop.polish_after": 20000})
    assert problems.for_cell(full, config_module.cells(full)[0]).first_checkpoint() == 2000


def test_a_gradient_descent_run_that_stops_on_a_plateau_is_finished_once(monkeypatch):
    # Its checkpoint's finish failed; the final finish of the plateau stop would be the
    # same computation on the same point, so it is not run again.
    config = sampled(**{"stop.polish_after": 10, "stop.plateau_tol": 1e-6})
    cell = config_module.cells(config)[0]
    calls = []
    solve = finish_shallow.finish
    monkeypatch.setattr(finish_shallow, "finish", lambda *a: calls.append(a) or solve(*a))
    theta = np.asarray(
        problems.for_cell(config, cell).objective.init(run_key(config.seed, 3, 3, cell.d, 0), 1.0)
    )
    out = Finished.at(theta[None], [0.5], np.array([StopReason.PAUSED], np.int8), runs=[7])
    expected = problems.for_cell(config, cell).finish(theta, float(out.step_size[0]), True)
    one_finish = len(calls)  # the solves of one finish of this point
    calls.clear()
    settle(out, problems.for_cell(config, cell), {7: 0.5})
    assert not expected.converged and one_finish  # (else no plateau)
    assert out.reason[0] == StopReason.PLATEAU and len(calls) == one_finish


def test_the_finish_on_data_runs_with_one_blas_thread_and_gives_the_threads_back(monkeypatch):
    # Its thousands of small solves are faster on one BLAS thread; the process's own
    # setting comes back afterwards.
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    config = sampled(**{"stop.polish_after": 10})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    inside = []
    solve = finish_shallow.finish
    monkeypatch.setattr(
        finish_shallow, "finish", lambda *a: inside.append(blas_threads()) or solve(*a)
    )
    theta = np.asarray(problem.objective.init(run_key(config.seed, 3, 3, 3, 0), 1.0))
    with threadpool_limits(limits=2, user_api="blas"):  # whatever the machine's cores
        problem.finish(theta, 0.1)
        assert inside and all(threads == {1} for threads in inside) and blas_threads() == {2}


@pytest.mark.slow
def test_one_blas_thread_holds_for_scipy_loaded_after_it():
    """The finishes on data import SciPy only when they run: its BLAS, loaded then, runs
    on one thread too (a fresh process, so that nothing has loaded SciPy before)."""
    probe = (
        "from threadpoolctl import threadpool_info\n"
        "from sweep import runtime\n"
        "with runtime.one_blas_thread():\n"
        "    import scipy.optimize\n"
        "    print(sorted({lib['num_threads'] for lib in threadpool_info()\n"
        "                  if lib['user_api'] == 'blas'}))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
