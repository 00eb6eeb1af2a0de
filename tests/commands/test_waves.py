"""Adaptive sampling: the confidence sequence's coverage and bounds, and sweeps that stop a
cell once its interval is tight, deterministically."""

import math
from unittest import mock

import mpmath
import numpy as np
import pytest

import sweep
from sweep import config as config_module
from sweep.commands import cluster
from sweep.commands.runner import RunOptions, run_sweep
from sweep.commands.waves import Waves, shard_states
from sweep.confidence import confidence_sequence, halfwidth, log_mixture, wilson_interval
from sweep.config import shard_list
from sweep.results import progress

RUNS = 1000


def _time_uniform_coverage(p, sequences, rng, covered_at):
    """The fraction of simulated sequences whose interval holds p at every t <= RUNS."""
    draws = rng.random((sequences, RUNS)) < p
    successes = np.cumsum(draws, axis=1)
    trials = np.arange(1, RUNS + 1)
    return covered_at(successes, trials).all(axis=1).mean()


@pytest.mark.parametrize("p", [0.01, 0.3, 0.9])
def test_the_sequence_covers_the_rate_at_every_number_of_runs(p):
    rng = np.random.default_rng(7)
    coverage = _time_uniform_coverage(
        p, 10_000, rng, lambda s, t: log_mixture(s, t, p) < math.log(1 / 0.05)
    )
    assert coverage >= 0.95, coverage


def test_a_wilson_interval_checked_after_every_wave_does_not():
    """What the sequence is for: Wilson's interval, looked at after every wave of 50 runs,
    misses p = 0.3 at some wave far more often than 5% of the time."""
    rng = np.random.default_rng(7)
    z = 1.959963984540054

    def wilson_holds(successes, trials):
        waves = (trials % 50) == 0
        s, t = successes[:, waves], trials[waves]
        rate = s / t
        centre = (rate + z * z / (2 * t)) / (1 + z * z / t)
        half = z * np.sqrt(rate * (1 - rate) / t + z * z / (4 * t * t)) / (1 + z * z / t)
        return np.abs(centre - 0.3) <= half

    coverage = _time_uniform_coverage(0.3, 10_000, rng, wilson_holds)
    assert coverage < 0.90, coverage


@pytest.mark.parametrize("trials", [10, 250, 1000])
def test_with_no_success_the_upper_bound_has_a_closed_form(trials):
    """S = 0: M_t(p) = B(a, b + t) / (B(a, b) (1 - p)^t) < 20 exactly below
    1 - (B(a, b + t) / (20 B(a, b)))^(1/t), in 50 digits."""
    mpmath.mp.dps = 50
    a = b = mpmath.mpf(1) / 2
    ratio = mpmath.beta(a, b + trials) / mpmath.beta(a, b)
    upper = 1 - (ratio / 20) ** (mpmath.mpf(1) / trials)
    low, high = confidence_sequence(0, trials)
    assert low == 0.0
    assert abs(high - float(upper)) < 1e-11


def test_the_sequence_is_wider_than_wilson_and_holds_the_estimate():
    for successes, trials in [(3, 250), (125, 250), (990, 1000)]:
        low, high = confidence_sequence(successes, trials)
        wilson = wilson_interval(successes, trials)
        assert low < successes / trials < high
        assert low < wilson[0] and high > wilson[1]
        # Just outside each end, the martingale is past 1/alpha.
        for edge, outside in ((low, low - 1e-9), (high, high + 1e-9)):
            if 0 < edge < 1:
                assert log_mixture(successes, trials, outside) >= math.log(20)


def _adaptive(seeds=200, **extra):
    raw = {"sweep": {"k": [6, 14], "seeds": seeds, "shard_size": 40, "target_halfwidth": 0.05},
           **extra}  # fmt: skip
    return config_module.from_dict(raw)


@pytest.mark.slow
def test_an_adaptive_sweep_stops_a_cell_once_its_interval_is_tight(tmp_path):
    config = _adaptive()
    out = tmp_path / "whole"
    run_sweep(config, out, RunOptions(progress=False, log=lambda *_: None))
    runs = sweep.load(out)
    counts = runs.groupby("k").size()
    # Each cell stopped after the first wave whose interval was tight, or at 200 runs.
    for k, cell in runs.groupby("k"):
        spurious = np.cumsum(cell.sort_values("run")["status"].eq("spurious")).to_numpy()
        widths = [halfwidth(confidence_sequence(spurious[t - 1], t), spurious[t - 1] / t)
                  for t in range(40, len(cell) + 1, 40)]  # fmt: skip
        assert all(width > 0.05 for width in widths[:-1]), k
        assert widths[-1] <= 0.05 or len(cell) == 200, k
    # No spurious run at k = 6: the interval [0, 0.127] at 40 runs, [0, 0.069] at 80,
    # [0, 0.048] at 120 reaches within 0.05 of the rate 0 on each side.
    assert counts[6] == 120
    states = shard_states(out)
    assert (states.state.isin(progress.SETTLED)).all()
    assert (states.state == "not needed").sum() == 2  # k = 6's last 2 waves
    # The stop rule reads each finished shard once, however often it is asked.
    plan = Waves(out, config)
    shards = shard_list(config)
    first_answer = plan.unneeded(shards)
    read = len(plan.counts)
    with mock.patch("pyarrow.parquet.read_table", side_effect=AssertionError("read again")):
        assert plan.unneeded(shards) == first_answer and len(plan.counts) == read
    assert (out / "_catalogue.parquet").exists()
    # Interrupted after its first wave, the same sweep stops at the same wave.
    first = tmp_path / "interrupted"
    run_sweep(config, first, RunOptions(progress=False, only=frozenset(
        {"k14-n14-d14-r0000000-0000040"}), log=lambda *_: None))  # fmt: skip
    assert len(sweep.load(first)) == 40
    run_sweep(config, first, RunOptions(progress=False, log=lambda *_: None))
    again = sweep.load(first).sort_values(["k", "run"]).reset_index(drop=True)
    whole = runs.sort_values(["k", "run"]).reset_index(drop=True)
    assert again[["k", "run", "status", "loss"]].equals(whole[["k", "run", "status", "loss"]])
    # The summary names its interval.
    text, _ = sweep.reports.write_report(out)
    assert "[95% CS]" in text and "beta-binomial" in text


@pytest.mark.slow
def test_an_adaptive_sweep_through_slurm_stops_where_the_local_one_does(slurm, tmp_path):
    from sweep.commands.cli import main

    argv = ["run", "--k", "6,14", "--seeds", "200", "--halfwidth", "0.05", "--set",
            "sweep.shard_size=40", "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    assert main([*argv, "--out", str(tmp_path / "cluster"), "--launcher", "slurm",
                 "--tasks", "2", "--wait"]) == 0  # fmt: skip
    keys = ["k", "run", "status", "loss"]
    local = sweep.load(tmp_path / "local").sort_values(["k", "run"]).reset_index(drop=True)
    cluster_rows = sweep.load(tmp_path / "cluster").sort_values(["k", "run"])
    assert cluster_rows.reset_index(drop=True)[keys].equals(local[keys])
    assert len(local) < 400


def test_the_cluster_gives_each_adaptive_cell_to_one_task():
    names = [f"k{k:02d}-n{k:02d}-d{k:02d}-r{s:07d}-{s + 40:07d}" for k in (6, 7, 8)
             for s in (0, 40, 80)]  # fmt: skip
    shares = cluster.deal(names, 2, whole_cells=True)
    assert [len(share) for share in shares] == [6, 3]
    assert {name[:3] for name in shares[1]} == {"k07"}
    assert cluster.deal(names, 2) == [names[0::2], names[1::2]]


def test_a_bad_halfwidth_is_one_line():
    with pytest.raises(config_module.ConfigError, match="sweep.target_halfwidth: expected"):
        _adaptive(sweep={"target_halfwidth": 0.7})


@pytest.mark.parametrize("spurious, runs", [(0, 40), (3, 70), (40, 100), (100, 100)])
def test_the_halfwidth_is_the_wider_side_from_the_rate(spurious, runs):
    low, high = confidence_sequence(spurious, runs)
    rate = spurious / runs
    width = halfwidth((low, high), rate)
    assert low - 1e-15 <= rate <= high + 1e-15
    # Both sides lie within the half-width of the rate, and one side reaches it.
    assert rate - low <= width and high - rate <= width
    assert max(rate - low, high - rate) == width
