"""The float32 phase (`optimizer.precision = "mixed"`): float32 until |grad| <= 1e-4,
then the float64 engine decides where each run stops."""

import numpy as np
import pytest

from sweep import config as config_module
from sweep import problems
from sweep.engine import scheduler as engine_module
from sweep.engine.scheduler import Engine
from sweep.outcomes import StopReason


def _config(tiny_config, precision, **stop):
    raw = tiny_config(seeds=12).to_raw()
    return config_module.from_dict(
        {
            **raw,
            "optimizer": {"precision": precision},
            "stop": {"loss_tol": 0, "polish_after": 0, **stop},
            "engine": {"batch_size": 4, "segment_steps": 50},
        }
    )


def _train(cfg, recorder=None):
    engine = Engine(cfg)
    cell = config_module.cells(cfg)[1]  # k = n = 5
    parts = list(engine.train(problems.for_cell(cfg, cell), range(12), recorder))
    runs = np.concatenate([p.runs for p in parts])
    order = np.argsort(runs)
    out = {
        key: np.concatenate([getattr(p, key) for p in parts])[order]
        for key in ("runs", "weights", "steps", "reason", "loss", "step_size")
    }
    return out, engine


@pytest.mark.slow
def test_mixed_precision_lands_where_float64_does(tiny_config):
    exact, _ = _train(_config(tiny_config, "float64"))
    mixed, engine = _train(_config(tiny_config, "mixed"))
    np.testing.assert_array_equal(mixed["runs"], np.arange(12))
    np.testing.assert_array_equal(mixed["reason"], exact["reason"])
    assert (mixed["reason"] == StopReason.BASIN).sum() >= 6
    # Most of the descent ran in float32, and the float64 finish removed its rounding.
    assert engine.counters.float32_steps > 0.5 * mixed["steps"].sum()
    np.testing.assert_allclose(mixed["weights"], exact["weights"], atol=1e-9)
    np.testing.assert_allclose(mixed["steps"], exact["steps"], rtol=0.05)
    assert mixed["weights"].dtype == np.float64


def test_groups_and_batches_do_not_change_mixed_results(tiny_config, monkeypatch):
    one_group, _ = _train(_config(tiny_config, "mixed"))
    monkeypatch.setattr(engine_module, "FLOAT32_GROUP", 1)  # 3 groups of 4 runs
    groups, _ = _train(_config(tiny_config, "mixed"))
    for key in ("steps", "reason", "weights", "loss"):
        np.testing.assert_array_equal(one_group[key], groups[key])


def test_the_recorder_sees_the_float32_phase_then_float64(tiny_config):
    cfg = _config(tiny_config, "mixed")
    plain, _ = _train(cfg)
    dtypes, seen = [], {}

    def record(runs, history):
        dtypes.append(history.loss.dtype)
        for slot, run in enumerate(runs):
            if run >= 0:
                taken = history.steps[history.evaluated[:, slot], slot]
                seen.setdefault(int(run), []).extend(taken.tolist())

    recorded, _ = _train(cfg, record)
    assert dtypes[0] == np.float32 and dtypes[-1] == np.float64
    for key in ("steps", "reason", "weights"):
        np.testing.assert_array_equal(recorded[key], plain[key])
    for steps in seen.values():
        # Every step once, in order; the step the float32 phase stopped at is evaluated
        # again in float64 (where its stop is decided), so it may appear twice.
        assert np.all(np.diff(steps) >= 0) and np.all(np.diff(steps) <= 1)
        assert set(steps) == set(range(max(steps) + 1))


def test_an_unknown_precision_is_a_one_line_error(tiny_config):
    with pytest.raises(config_module.ConfigError, match="optimizer.precision"):
        _config(tiny_config, "half")


def test_float32_hands_over_before_a_loose_gradient_stop(tiny_config):
    """With grad_tol above 1e-4 the float32 phase ends at grad_tol, where float64 stops
    the run: the same steps as the float64 engine, give or take the crossing step."""
    exact, _ = _train(_config(tiny_config, "float64", grad_tol=1e-3, basin_grad=0))
    mixed, engine = _train(_config(tiny_config, "mixed", grad_tol=1e-3, basin_grad=0))
    assert (exact["reason"] == StopReason.GRAD).all()
    np.testing.assert_array_equal(mixed["reason"], exact["reason"])
    assert np.abs(mixed["steps"] - exact["steps"]).max() <= 1
    assert engine.counters.float32_steps >= mixed["steps"].sum() - 12


@pytest.mark.slow
def test_ntk_step_sizes_are_the_float64_ones(tiny_config):
    """Step sizes in NTK units come from the float64 initial point and data, so both
    phases step with exactly the float64 engine's step size."""
    raw = tiny_config(seeds=4).to_raw()

    def config(precision):
        return config_module.from_dict(
            {
                **raw,
                "problem": {"kind": "empirical", "samples": 20, "test_samples": 20},
                "optimizer": {"precision": precision, "step_size": 1.0, "step_unit": "ntk"},
                "stop": {"max_steps": 50, "polish_after": 0},
                "engine": {"batch_size": 4, "segment_steps": 50},
            }
        )

    exact, _ = _train(config("float64"))
    mixed, _ = _train(config("mixed"))
    np.testing.assert_array_equal(mixed["step_size"], exact["step_size"])
    np.testing.assert_array_equal(mixed["steps"], exact["steps"])
