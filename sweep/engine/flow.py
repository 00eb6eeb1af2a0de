"""Gradient flow dW/dt = -grad F (`optimizer.kind = "flow"`), integrated by diffrax.

The engine takes one adaptive step of diffrax's solver per update of a run, exactly as
`diffrax.diffeqsolve` does inside its loop (`solver.step`, then the PID controller's
`adapt_step_size`, then keep or reject), so each run carries its own time, step size,
solver and controller state through segments, pauses and refills like any optimizer
state. A run's `steps` are its step attempts; its `step_size` the first step dt0.

Solvers (`optimizer.solver`):
  - "tsit5": Tsitouras' explicit 5(4) pair, for a flow that is not stiff;
  - "kvaerno5": Kvaerno's L-stable implicit ESDIRK 5(4) pair, for the stiff flow near
    minima (eigenvalues of the Hessian spread over orders of magnitude). Its stages are
    solved by diffrax's chord method with the Jacobian -H, the objective's analytic
    Hessian (`vector_field`): lineax's dense LU up to
    `DENSE_PARAMETERS` parameters, above that GMRES on Hessian-vector products, never a
    dense factorization;
  - "auto": tsit5 until |grad F| <= `optimizer.stiff_below`, then kvaerno5 from there
    (`Engine.train` hands the runs over, `handed_over`).
"""

import functools
from typing import Any, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import lineax
import numpy as np

from ..config import OptimizerSettings

# Above this many parameters the implicit stages use GMRES, matrix-free.
DENSE_PARAMETERS = 1000
GMRES_RESTART = 40


class FlowState(NamedTuple):
    """A run's integration state (its `opt_state`); leaves gain a leading axis B."""

    t: jax.Array  # flow time reached
    dt: jax.Array  # the next step's size
    solver: Any  # diffrax solver state (FSAL stage)
    controller: Any  # PID controller state
    made_jump: jax.Array
    accepted: jax.Array  # int32: accepted steps
    rejected: jax.Array  # int32: rejected steps
    # int32: evaluations of the vector field by the explicit solver; -1 once the implicit
    # solver has run (diffrax does not report its stages' chord iterations)
    evaluations: jax.Array


def vector_field(objective) -> diffrax.ODETerm:
    """-grad F as a diffrax term whose derivative is the objective's analytic Hessian
    (automatic forward-mode through the gradient is NaN where a neuron's angle with
    itself enters, and costs more)."""

    @jax.custom_jvp
    def descent(weights, data):
        return -objective.loss_and_grad(weights, data)[1]

    @descent.defjvp
    def _(primals, tangents):
        weights, data = primals
        return descent(weights, data), -objective.hessian_operator(weights, data)(tangents[0])

    return diffrax.ODETerm(lambda t, weights, data: descent(weights, data))


def solver_for(settings: OptimizerSettings, parameters: int, stiff: bool) -> diffrax.AbstractSolver:
    """The diffrax solver of the flow's phase (`stiff`: the phase after the handover of
    solver = "auto"; see the module docstring)."""
    if settings.solver == "tsit5" or (settings.solver == "auto" and not stiff):
        return diffrax.Tsit5()
    if parameters > DENSE_PARAMETERS:
        linear = lineax.GMRES(rtol=settings.rtol * 1e-3, atol=settings.atol * 1e-3,
                              restart=GMRES_RESTART)  # fmt: skip
    else:
        linear = lineax.LU()
    chord = diffrax.VeryChord(rtol=settings.rtol, atol=settings.atol, linear_solver=linear)
    return diffrax.Kvaerno5(root_finder=chord)


def implicit(spec) -> bool:
    """Whether a `TrainSpec` integrates with the implicit solver. Its lineax solves fail
    inside JAX's shard_map, and XLA's own partitioning of their loops stalls on CPU
    devices, so such runs train on one device (`Engine.one_device`)."""
    return spec.optimizer.flow and (spec.stiff or spec.optimizer.solver == "kvaerno5")


def _controller(settings: OptimizerSettings) -> diffrax.PIDController:
    return diffrax.PIDController(rtol=settings.rtol, atol=settings.atol)


def init(spec, weights, dt0, data) -> FlowState:
    """The state of one run at flow time 0 (`dt0`: its first step); `spec` is the
    engine's `TrainSpec`."""
    settings, term = spec.optimizer, vector_field(spec.objective)
    solver = solver_for(settings, weights.size, spec.stiff)
    t0 = jnp.zeros((), jnp.float64)
    _, controller = _controller(settings).init(
        term, t0, t0 + dt0, weights, dt0, data, term.vf, solver.error_order(term)
    )
    return FlowState(
        t=t0,
        dt=jnp.asarray(dt0, jnp.float64),
        solver=solver.init(term, t0, t0 + dt0, weights, data),
        controller=controller,
        made_jump=jnp.asarray(False),
        accepted=jnp.zeros((), jnp.int32),
        rejected=jnp.zeros((), jnp.int32),
        evaluations=jnp.asarray(-1 if implicit(spec) else 0, jnp.int32),
    )


def _evaluations(solver, state: FlowState) -> jax.Array:
    """The vector-field evaluations of one explicit step attempt: every stage, but the
    first of an FSAL pair, which reuses the last stage of the step before (and is
    evaluated only while no step has been accepted: the solver state's first flag)."""
    stages = len(solver.tableau.a_lower) + 1
    if not solver.tableau.fsal:
        return jnp.asarray(stages, jnp.int32)
    first_step = state.solver[0]
    return (stages - 1 + (first_step | state.made_jump)).astype(jnp.int32)


def step(spec, weights, state: FlowState, data):
    """One step attempt of one run, as `diffrax.diffeqsolve` makes it: returns the new
    weights (unchanged if rejected) and state."""
    settings, term = spec.optimizer, vector_field(spec.objective)
    solver = solver_for(settings, weights.size, spec.stiff)
    t0, t1 = state.t, state.t + state.dt
    moved, error, _, solver_state, _ = solver.step(
        term, t0, t1, weights, data, state.solver, state.made_jump
    )
    error = jnp.where(jnp.isnan(error), jnp.inf, error)  # as diffeqsolve: reject, shrink
    keep, t_next, t_after, made_jump, controller, _ = _controller(settings).adapt_step_size(
        t0, t1, weights, moved, data, error, solver.error_order(term), state.controller
    )

    def kept(new, old):
        return jnp.where(keep, new, old)

    evaluations = state.evaluations
    if not implicit(spec):
        evaluations = evaluations + _evaluations(solver, state)

    return kept(moved, weights), FlowState(
        t=t_next,
        dt=t_after - t_next,
        solver=jax.tree.map(kept, solver_state, state.solver),
        controller=controller,
        made_jump=kept(made_jump, state.made_jump),
        accepted=state.accepted + keep.astype(jnp.int32),
        rejected=state.rejected + (~keep).astype(jnp.int32),
        evaluations=evaluations,
    )


def handed_over(spec, weights, state: FlowState, data):
    """A run's state for the stiff phase (`spec`), from where the explicit phase left it:
    the same time, step size and counts, the implicit solver's own fresh state."""
    fresh = init(spec, weights, state.dt, data)
    return fresh._replace(t=state.t, accepted=state.accepted, rejected=state.rejected,
                          evaluations=jnp.asarray(-1, jnp.int32))  # fmt: skip


@functools.partial(jax.jit, static_argnames=("spec",))
def _handed_over_runs(spec, weights, states, data):
    return jax.vmap(functools.partial(handed_over, spec), (0, 0, None))(weights, states, data)


def hand_over(spec, rows, data, finish_below: float):
    """Host rows (a stacked `RunState`) of runs the explicit phase left, ready for the
    implicit phase `spec`: running again, their solver state its own, with the implicit
    phase's `finish_below` (the basin finish's pause)."""
    states = _handed_over_runs(spec, rows.weights, rows.opt_state, data)
    return rows._replace(
        opt_state=jax.tree.map(np.asarray, jax.device_get(states)),
        reason=np.zeros_like(rows.reason),  # RUNNING
        finish_below=np.full_like(rows.finish_below, finish_below),
    )


def statistics(opt_state: Any, rows: np.ndarray) -> np.ndarray:
    """(m, 4) host array of flow time, accepted and rejected steps and explicit
    evaluations of the runs in `rows` (indices into the batch); NaN for runs of other
    optimizers, and for evaluations the implicit solver's runs."""
    if not isinstance(opt_state, FlowState):
        return np.full((len(rows), 4), np.nan)
    found = jax.device_get((opt_state.t, opt_state.accepted, opt_state.rejected,
                            opt_state.evaluations))  # fmt: skip
    found = np.stack([np.asarray(x, float)[rows] for x in found], axis=1)
    found[found[:, 3] < 0, 3] = np.nan
    return found
