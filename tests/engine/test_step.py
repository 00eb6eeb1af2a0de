import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep import config as config_module
from sweep.engine import run_state, segments
from sweep.objectives import PopulationLoss, gaussian
from sweep.outcomes import StopReason

RELU_3 = PopulationLoss(n=3, d=3)  # three ReLU neurons in three dimensions


def spec_for(**stop):
    cfg = config_module.from_dict({"stop": stop, "classify": {"global_loss_tol": 1e-3}})
    return run_state.TrainSpec(
        cfg.optimizer, cfg.stop.grad_tol, cfg.stop.loss_tol, cfg.stop.max_steps, RELU_3
    )


def start(spec, weights, step_size):
    batch, n, d = weights.shape
    return run_state.RunState(
        weights=jnp.asarray(weights),
        opt_state=run_state.init_opt_state(spec, jnp.asarray(weights)),
        steps=jnp.zeros(batch, jnp.int32),
        loss=jnp.zeros(batch),
        grad_norm=jnp.zeros(batch),
        reason=jnp.zeros(batch, jnp.int8),
        pause_at=jnp.full(batch, run_state.NEVER, jnp.int32),
        step_size=jnp.full(batch, step_size),
        key=jnp.zeros((batch, 2), jnp.uint32),
        watched=jnp.zeros(batch, bool),
        finish_below=jnp.zeros(batch),
    )


def reference_gd(weights, teacher, step_size, grad_tol, max_steps):
    """The protocol, one run, in a plain Python loop."""
    loss_and_grad = jax.jit(gaussian.loss_and_grad)
    for steps in range(max_steps + 1):
        value, g = loss_and_grad(weights, teacher)
        if float(jnp.linalg.norm(g)) <= grad_tol or steps == max_steps:
            return steps, weights
        weights = weights - step_size * g


def test_segment_equals_plain_gradient_descent(rng):
    k = 3
    teacher = gaussian.orthonormal_teacher(k)
    spec = spec_for(grad_tol=1e-6, loss_tol=0.0, max_steps=10_000)
    weights = rng.standard_normal((4, k, k)) / np.sqrt(k)
    state, _ = segments.train_segment(start(spec, weights, 1.0), teacher, spec, 3000)
    for i in range(4):
        steps, final = reference_gd(jnp.asarray(weights[i]), teacher, 1.0, 1e-6, 10_000)
        assert int(state.reason[i]) == StopReason.GRAD
        assert int(state.steps[i]) == steps
        np.testing.assert_allclose(state.weights[i], final, atol=1e-12)


def test_stopped_runs_stay_frozen(rng):
    teacher = gaussian.orthonormal_teacher(3)
    spec = spec_for(grad_tol=1e-6, loss_tol=0.0, max_steps=10_000)
    weights = rng.standard_normal((2, 3, 3)) / np.sqrt(3)
    state, taken = segments.train_segment(start(spec, weights, 1.0), teacher, spec, 3000)
    # Run-steps computed: both runs, until the last of them has stopped.
    assert int(taken[0]) == 2 * (int(np.max(state.steps)) + 1)
    assert np.all(np.asarray(state.reason) == StopReason.GRAD)
    steps, weights = np.asarray(state.steps), np.asarray(state.weights)
    again, taken = segments.train_segment(state, teacher, spec, 50)  # donates `state`
    assert int(taken[0]) == 0
    np.testing.assert_array_equal(again.steps, steps)
    np.testing.assert_array_equal(again.weights, weights)


@pytest.mark.parametrize(
    "stop,step_size,reason",
    [
        (dict(max_steps=7), 1.0, StopReason.MAX_STEPS),
        (dict(loss_tol=1e-4), 1.0, StopReason.LOSS),
        (dict(), 1e3, StopReason.NONFINITE),
    ],
)
def test_stop_reasons(stop, step_size, reason, rng):
    teacher = gaussian.orthonormal_teacher(3)
    spec = spec_for(**stop)
    state, _ = segments.train_segment(
        start(spec, rng.standard_normal((1, 3, 3)), step_size), teacher, spec, 300
    )
    assert int(state.reason[0]) == reason
    if reason == StopReason.MAX_STEPS:
        assert int(state.steps[0]) == 7


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_other_optimizers_converge(kind, rng):
    cfg = config_module.from_dict(
        {"optimizer": {"kind": kind, "step_size": "0.05"}, "stop": {"grad_tol": 1e-8}}
    )
    spec = run_state.TrainSpec(cfg.optimizer, 1e-8, 1e-12, 50_000, RELU_3)
    teacher = gaussian.orthonormal_teacher(3)
    state, _ = segments.train_segment(
        start(spec, np.eye(3)[None] + 0.1, 0.05), teacher, spec, 20_000
    )
    assert int(state.reason[0]) in (StopReason.GRAD, StopReason.LOSS)
