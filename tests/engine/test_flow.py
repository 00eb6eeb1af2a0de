"""Gradient flow (`optimizer.kind = "flow"`): diffrax's steps against the exact flow of a
quadratic, the analytic-Hessian Jacobian, the handover between solvers, and sweeps that
end where small-step gradient descent ends."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import lineax
import numpy as np
import pytest
from scipy.linalg import expm

import sweep
from sweep import config as config_module
from sweep import problems
from sweep.config import ConfigError, OptimizerSettings
from sweep.engine import flow
from sweep.engine.run_state import TrainSpec
from sweep.engine.scheduler import train_spec
from sweep.symmetry.canonical import canonical_form


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """F(w) = w^T A w / 2: the flow is w(t) = expm(-A t) w0."""

    def loss_and_grad(self, weights, matrix):
        return 0.5 * weights @ matrix @ weights, matrix @ weights

    def hessian_operator(self, weights, matrix):
        return lambda vector: matrix @ vector


def _stiff_matrix():
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    return jnp.asarray(rotation @ np.diag([0.01, 0.1, 10.0, 300.0]) @ rotation.T)


@pytest.mark.parametrize("solver,stiff", [("tsit5", False), ("kvaerno5", True)])
def test_steps_follow_the_exact_flow_of_a_quadratic(solver, stiff):
    settings = OptimizerSettings(kind="flow", solver=solver, rtol=1e-8, atol=1e-10)
    spec = TrainSpec(optimizer=settings, grad_tol=0.0, loss_tol=0.0, max_steps=1,
                     objective=Quadratic(), stiff=stiff)  # fmt: skip
    matrix, start = _stiff_matrix(), jnp.ones(4)
    state = flow.init(spec, start, 1e-3, matrix)
    step = jax.jit(functools.partial(flow.step, spec))
    weights, before_first = start, 0
    for _ in range(4000 if not stiff else 400):
        before_first += int(state.accepted == 0)  # attempts that evaluate the first stage
        weights, state = step(weights, state, matrix)
        if state.t >= 5.0:
            break
    exact = expm(-np.asarray(matrix) * float(state.t)) @ np.ones(4)
    np.testing.assert_allclose(weights, exact, rtol=0, atol=1e-6)
    assert state.t >= 5.0 and state.accepted > 10
    attempts = int(state.accepted + state.rejected)
    if stiff:  # L-stable: steps far beyond explicit stability (2.8 / 300)
        assert float(state.t) / int(state.accepted) > 0.05
        assert state.evaluations == -1  # not reported for the implicit solver
    else:
        assert int(state.rejected) > 0  # the controller held the explicit steps back
        # Tsit5: 7 stages, the first reused from the step before once one is accepted.
        assert state.evaluations == 6 * attempts + before_first


def test_the_implicit_stages_use_the_analytic_hessian():
    """Forward-mode through the closed form's gradient is NaN (the angle of a neuron with
    itself); the flow's field carries the analytic Hessian as its derivative."""
    config = config_module.load(None, {"sweep.k": 6, "optimizer.kind": "flow"})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    weights = jnp.asarray(np.random.default_rng(1).normal(size=(6, 6)) / np.sqrt(6))
    data = problem.data.train
    term = flow.vector_field(problem.objective)
    jacobian = jax.jacfwd(lambda w: term.vf(0.0, w, data))(weights).reshape(36, 36)
    hessian = np.asarray(problem.objective.hessian(weights, data)).reshape(36, 36)
    np.testing.assert_allclose(jacobian, -hessian, rtol=0, atol=1e-12)
    raw = jax.jacfwd(lambda w: problem.objective.loss_and_grad(w, data)[1])(weights)
    assert not np.isfinite(raw).all()


def test_large_students_solve_their_stages_without_a_matrix():
    settings = OptimizerSettings(kind="flow", solver="auto")
    dense = flow.solver_for(settings, flow.DENSE_PARAMETERS, stiff=True)
    large = flow.solver_for(settings, flow.DENSE_PARAMETERS + 1, stiff=True)
    assert isinstance(dense.root_finder.linear_solver, lineax.LU)
    assert isinstance(large.root_finder.linear_solver, lineax.GMRES)
    assert type(flow.solver_for(settings, 10, stiff=False)).__name__ == "Tsit5"


@pytest.mark.parametrize(
    ("field", "value"),
    [("optimizer.batch_size", 10), ("optimizer.schedule", "cosine"),
     ("optimizer.precision", "mixed")],
)  # fmt: skip
def test_what_the_flow_does_not_have_is_one_line(field, value):
    with pytest.raises(ConfigError, match=f"{field}: expected .* for optimizer.kind = flow"):
        kind = "empirical" if "batch" in field else "gaussian_relu"
        config_module.load(None, {"optimizer.kind": "flow", field: value, "problem.kind": kind})


def _canonical(row):
    return canonical_form(np.reshape(row["weights"], (row["n"], row["d"])))


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["auto", "tsit5"])
def test_a_flow_sweep_ends_where_small_step_descent_ends(tmp_path, solver):
    common = dict(k="6..7", seeds=24, progress=False)
    flowed = sweep.run(out=tmp_path / "flow", optimizer={"kind": "flow", "solver": solver},
                       **common)  # fmt: skip
    descent = sweep.run(out=tmp_path / "gd", optimizer={"step_size": "0.05/k"}, **common)
    assert flowed["flow_time"].gt(0).all() and flowed["solver_accepted"].gt(0).all()
    assert descent["flow_time"].isna().all() and descent["solver_evaluations"].isna().all()
    if solver == "tsit5":
        assert (flowed["solver_evaluations"] > 6 * flowed["steps"]).all()
    for (_, a), (_, b) in zip(flowed.iterrows(), descent.iterrows(), strict=True):
        assert (a["k"], a["run"], a["status"]) == (b["k"], b["run"], b["status"])
        np.testing.assert_allclose(_canonical(a), _canonical(b), rtol=0, atol=1e-6)


def test_the_explicit_phase_hands_each_run_over_where_it_stopped():
    config = config_module.load(None, {"sweep.k": 6, "optimizer.kind": "flow"})
    problem = problems.for_cell(config, config_module.cells(config)[0])
    spec = train_spec(problem, stiff=True)
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(6, 6)) / np.sqrt(6))
    explicit = dataclasses.replace(spec, stiff=False)
    state = flow.init(explicit, weights, 0.1, problem.data.train)
    for _ in range(5):
        weights, state = flow.step(explicit, weights, state, problem.data.train)
    handed = flow.handed_over(spec, weights, state, problem.data.train)
    assert (handed.t, handed.dt, handed.accepted) == (state.t, state.dt, state.accepted)
    moved, after = weights, handed
    for _ in range(5):  # the implicit solver takes a step within a few attempts
        moved, after = flow.step(spec, moved, after, problem.data.train)
    assert after.t > handed.t and after.accepted > handed.accepted
    assert np.isfinite(moved).all()


def test_networks_on_data_train_by_the_flow_too(tmp_path):
    runs = sweep.run(out=tmp_path / "data", k="4", seeds=6, progress=False,
                     problem={"kind": "empirical", "samples": 200},
                     optimizer={"kind": "flow"})  # fmt: skip
    assert len(runs) == 6 and runs["flow_time"].gt(0).all()
    assert runs["status"].isin(["global", "spurious", "saddle"]).all()
    assert (runs["solver_accepted"] + runs["solver_rejected"] == runs["steps"]).all()
