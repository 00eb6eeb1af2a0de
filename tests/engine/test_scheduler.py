import jax
import numpy as np
import pandas as pd
import pytest

from sweep import config as config_module
from sweep import load, problems, programs
from sweep.commands.runner import RunOptions, run_sweep
from sweep.engine import pauses, segments
from sweep.engine.scheduler import Engine, train_spec
from sweep.engine.slots import (
    COMPACTED,
    FIRST,
    RUN_FRACTION,
    SHORTEST,
    SegmentLength,
    Slots,
    fewest_chunks,
    first_batch_size,
    ladder,
    smaller,
)
from sweep.objectives import gaussian
from sweep.objectives.initializers import initial_weights, run_key
from sweep.objectives.population import PopulationLoss
from sweep.outcomes import StopReason


def trained(cfg, runs, batch_size, cell_index=0):
    cfg = config_module.from_dict(
        {**cfg.to_raw(), "engine": {"batch_size": batch_size, "segment_steps": 50}}
    )
    engine = Engine(cfg)
    cell = config_module.cells(cfg)[cell_index]
    parts = list(engine.train(problems.for_cell(cfg, cell), runs))
    runs_out = np.concatenate([p.runs for p in parts])
    order = np.argsort(runs_out)
    columns = {
        key: np.concatenate([getattr(p, key) for p in parts])[order]
        for key in ("runs", "weights", "steps", "newton_steps", "loss", "grad_norm", "reason")
    }
    return columns, engine


def test_batch_equals_one_run_at_a_time(tiny_config):
    cfg = tiny_config()
    batched, _ = trained(cfg, range(8), batch_size=8)
    for run in range(8):
        single, _ = trained(cfg, [run], batch_size=1)
        for key in ("steps", "reason"):
            assert single[key][0] == batched[key][run]
        # XLA may round a batch of one differently from a batch of 8 (last bits only).
        np.testing.assert_allclose(single["weights"][0], batched["weights"][run], atol=1e-12)
        np.testing.assert_allclose(single["loss"][0], batched["loss"][run], atol=1e-14)


def test_result_does_not_depend_on_slot_or_order(tiny_config):
    cfg = tiny_config()
    forward, _ = trained(cfg, range(12), batch_size=4)
    backward, _ = trained(cfg, reversed(range(12)), batch_size=16)
    np.testing.assert_array_equal(forward["runs"], np.arange(12))
    for key in ("steps", "reason", "loss", "weights"):
        np.testing.assert_array_equal(forward[key], backward[key])


def test_runs_start_from_their_own_key(tiny_config):
    cfg = config_module.from_dict(
        {**tiny_config().to_raw(), "stop": {"max_steps": 1, "polish_after": 0}}
    )
    out, _ = trained(cfg, [3, 5], batch_size=2)
    cell = config_module.cells(cfg)[0]
    teacher = gaussian.orthonormal_teacher(cell.k)
    for i, run in enumerate((3, 5)):
        w0 = initial_weights(
            run_key(cfg.seed, cell.k, cell.n, cell.d, run), cell.n, cell.d, cell.init_scale
        )
        expected = w0 - cell.step_size * gaussian.grad(w0, teacher)
        assert out["steps"][i] == 1 and out["reason"][i] == StopReason.MAX_STEPS
        np.testing.assert_allclose(out["weights"][i], expected, rtol=0, atol=1e-15)


def test_every_run_comes_back_once_and_work_is_counted(tiny_config):
    out, engine = trained(tiny_config(seeds=40), range(40), batch_size=16)
    np.testing.assert_array_equal(out["runs"], np.arange(40))
    assert engine.counters.steps_useful == out["steps"].sum()
    assert 0 < engine.counters.useful_fraction <= 1


def test_one_compile_per_batch_size_and_shape(tiny_config):
    # A cell shape no other test uses, so every compile counted here is this test's.
    raw = tiny_config(seeds=64).to_raw()
    cfg = config_module.from_dict({**raw, "sweep": {**raw["sweep"], "k": 3, "n": "k+2"}})
    before = segments.train_segment._cache_size()
    _, first = trained(cfg, range(32), batch_size=16)
    # Same shapes again, other runs, a new engine: compiled code is reused.
    _, second = trained(cfg, range(32, 64), batch_size=16)
    assert first.counters.segments + second.counters.segments > 10
    used = first.counters.batch_sizes | second.counters.batch_sizes
    assert segments.train_segment._cache_size() - before == len(used)


def test_a_cell_trains_in_one_batch_size_on_a_cpu(tiny_config):
    _, engine = trained(tiny_config(seeds=64), range(64), batch_size=64)
    assert {size for _, size in engine.counters.batch_sizes} == {64}


def test_the_tail_fills_as_few_chunks_as_it_can():
    slots = Slots([], 32, devices=2)
    slots.run[[1, 6, 9, 14, 17, 22, 30]] = [10, 11, 12, 13, 14, 15, 16]  # 7 runs, 7 chunks
    before = slots.run.copy()
    index = slots.regroup(32)
    # Spread over both devices' slices (16 slots each), at the front of each.
    assert list(np.flatnonzero(slots.run >= 0)) == [0, 1, 2, 3, 16, 17, 18]
    np.testing.assert_array_equal(slots.run[slots.run >= 0], before[index][slots.run >= 0])
    assert sorted(slots.run[slots.run >= 0]) == list(range(10, 17))
    assert np.all(before[index][slots.run < 0] < 0)  # empty slots copy an idle slot
    assert slots.chunks_in_use(4) == fewest_chunks(7, devices=2, chunk=4) == 2
    # New runs go to the device with the fewest runs, at the front of its slice.
    slots.queue.extend(range(20, 26))
    fresh, runs, _ = slots.refill()
    assert list(np.flatnonzero(fresh)) == [4, 5, 6, 19, 20, 21]
    assert list(runs[[19, 4, 20, 5, 21, 6]]) == [20, 21, 22, 23, 24, 25]
    # Accelerators have no chunks: the tail goes into batches a quarter the size.
    assert smaller(256, 20, devices=2) == 64 and smaller(256, 70, devices=2) == 256


def test_a_run_trains_bit_for_bit_the_same_in_any_batch(tiny_config):
    """On a CPU a device trains in chunks of one size per cell shape, so a run's arithmetic
    does not depend on its batch or slot."""
    cfg = tiny_config(seeds=48)
    assert programs.chunk_runs(PopulationLoss(4, 4), "cpu") == programs.chunks.MAX_CHUNK
    assert programs.chunk_runs(PopulationLoss(4, 4), "gpu") == 0  # accelerators: no chunks
    small, _ = trained(cfg, range(48), batch_size=64)
    large, _ = trained(cfg, range(47, -1, -1), batch_size=256)
    for key in ("steps", "reason", "weights", "loss", "grad_norm"):
        np.testing.assert_array_equal(small[key], large[key])
    alone, _ = trained(cfg, [7], batch_size=0)  # the default batch: at least one chunk
    for key in ("steps", "weights", "loss"):
        np.testing.assert_array_equal(alone[key][0], small[key][7])


@pytest.mark.parametrize("batch_size", [0, 5])
def test_batch_size_is_rounded_to_devices(tiny_config, batch_size):
    cfg = config_module.from_dict({**tiny_config().to_raw(), "engine": {"batch_size": batch_size}})
    engine = Engine(cfg)
    assert engine.batch_size % len(engine.devices) == 0 and engine.batch_size > 0


@pytest.mark.slow
def test_four_devices_give_the_one_device_results(tmp_path):
    """The batch sharded over 4 (forced host) devices reproduces the 1-device sweep."""
    import os
    import subprocess
    import sys

    import pandas as pd

    from sweep.commands.cli import main

    argv = ["run", "--k", "4..5", "--seeds", "16", "--batch-size", "8", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, "-m", "sweep", *argv, "--out", str(tmp_path / "four")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "on 4 cpu device(s)" in done.stdout
    one = pd.read_parquet(tmp_path / "one").sort_values(["k", "run"]).reset_index(drop=True)
    four = pd.read_parquet(tmp_path / "four").sort_values(["k", "run"]).reset_index(drop=True)
    assert (one["status"] == four["status"]).all()
    assert (one["steps"] == four["steps"]).all()
    np.testing.assert_allclose(one["loss"], four["loss"], rtol=0, atol=1e-9)


def test_newton_polish_finishes_slow_runs_on_the_same_minimum(tiny_config):
    """Runs still going at polish_after are polished; GD alone reaches the same points."""
    raw = tiny_config(seeds=24).to_raw()
    plain, _ = trained(
        config_module.from_dict(
            {**raw, "stop": {"loss_tol": 0, "polish_after": 0, "basin_grad": 0}}
        ),
        range(24),
        batch_size=8,
    )
    early = config_module.from_dict(
        {**raw, "stop": {"loss_tol": 0, "polish_after": 200, "basin_grad": 0}}
    )
    polished, engine = trained(early, range(24), batch_size=8)
    slow = plain["steps"] > 200
    assert slow.any() and engine.counters.polished > 0
    assert np.all(polished["reason"][~slow] == StopReason.GRAD)
    newton = polished["reason"] == StopReason.NEWTON
    assert newton.any() and np.all(polished["newton_steps"][newton] > 0)
    assert np.all(np.isin(polished["steps"][newton], [200, 400, 800, 1600, 3200]))
    assert np.all(polished["grad_norm"][newton] <= early.stop.grad_tol)
    np.testing.assert_allclose(polished["loss"], plain["loss"], atol=1e-10)
    np.testing.assert_allclose(polished["weights"], plain["weights"], atol=1e-6)


def test_polished_runs_do_not_depend_on_the_batch(tiny_config):
    raw = tiny_config(seeds=12).to_raw()
    cfg = config_module.from_dict(
        {**raw, "stop": {"loss_tol": 0, "polish_after": 150, "basin_grad": 0}}
    )
    wide, _ = trained(cfg, range(12), batch_size=8)
    narrow, _ = trained(cfg, range(12), batch_size=2)
    assert (wide["reason"] == StopReason.NEWTON).any()
    for key in ("steps", "newton_steps", "reason"):
        np.testing.assert_array_equal(wide[key], narrow[key])
    np.testing.assert_allclose(wide["weights"], narrow["weights"], atol=1e-12)


def test_a_recorder_changes_nothing_and_sees_every_step_once(tiny_config):
    from sweep.commands.replay import replay

    raw = tiny_config(seeds=6).to_raw()
    # No loss stop and early checkpoints: runs pause (and resume) several times.
    cfg = config_module.from_dict({**raw, "stop": {"loss_tol": 0, "polish_after": 8}})
    cell = config_module.cells(cfg)[0]
    problem = problems.for_cell(cfg, cell)
    plain = list(Engine(cfg).train(problem, range(6)))
    seen = []
    recorded = list(Engine(cfg).train(problem, range(6), recorder=lambda *a: seen.append(a)))
    assert seen

    def by_run(parts):
        order = np.argsort(np.concatenate([p.runs for p in parts]))
        return {
            key: np.concatenate([getattr(p, key) for p in parts])[order]
            for key in ("runs", "steps", "reason", "loss", "weights")
        }

    a, b = by_run(plain), by_run(recorded)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    paused = int(np.argmax(a["steps"]))  # the slowest run passed the most checkpoints
    assert a["steps"][paused] > 16
    history, final = replay(cfg, cell, int(a["runs"][paused]))
    np.testing.assert_array_equal(history["step"], np.arange(a["steps"][paused] + 1))
    assert final["steps"] == a["steps"][paused]
    np.testing.assert_array_equal(final["weights"], a["weights"][paused])
    # It ended through the Newton polish, after the last recorded gradient step.
    assert final["stop_reason"] == "newton" and final["loss"] < history["loss"].iloc[-1]


def test_basin_finished_runs_do_not_depend_on_the_batch(tiny_config):
    """Runs wait for the basin finish in their slots and are finished in chunks: which
    runs share a chunk must not change any result."""
    raw = tiny_config(seeds=12).to_raw()
    cfg = config_module.from_dict({**raw, "stop": {"loss_tol": 0, "polish_after": 0}})
    wide, engine = trained(cfg, range(12), batch_size=8)
    narrow, _ = trained(cfg, range(12), batch_size=2)
    assert (wide["reason"] == StopReason.BASIN).sum() >= 6 and engine.counters.basin_finished
    for key in ("steps", "newton_steps", "reason"):
        np.testing.assert_array_equal(wide[key], narrow[key])
    np.testing.assert_allclose(wide["weights"], narrow["weights"], atol=1e-12)


@pytest.mark.slow
def test_runs_the_basin_finish_passes_on_wait_for_whole_polish_calls(tiny_config, monkeypatch):
    """Wide students stop on singular minima, which the basin finish passes on to the
    Newton polish. A polish call costs the same however few runs it holds, so runs wait
    until they fill whole calls while others train; only a cell's tail polishes fewer.
    Which runs share a call changes nothing."""
    raw = tiny_config(seeds=24).to_raw()
    cfg = config_module.from_dict({**raw, "sweep": {**raw["sweep"], "n": "k+1"}})
    monkeypatch.setattr(programs.calls, "RUNS_PER_CALL", 1)  # whole calls of one run per device
    calls, flags = [], []
    finish, polish_runs = pauses.Waiting.finish, pauses.polish_runs

    def watched_finish(self, slots, problem, counters, whole_calls=False):
        flags.append(whole_calls)
        return finish(self, slots, problem, counters, whole_calls)

    def watched_polish(rows, *args):
        calls.append((len(rows.steps), flags[-1]))
        return polish_runs(rows, *args)

    monkeypatch.setattr(pauses.Waiting, "finish", watched_finish)
    monkeypatch.setattr(pauses, "polish_runs", watched_polish)
    waited, engine = trained(cfg, range(24), batch_size=8)
    size = programs.finish_batch()
    assert engine.counters.polish_attempts == sum(count for count, _ in calls) > size
    assert any(whole for _, whole in calls)
    assert all(count % size == 0 for count, whole in calls if whole)
    monkeypatch.undo()
    alone, _ = trained(cfg, range(24), batch_size=2)
    for key in ("steps", "newton_steps", "reason", "weights", "loss"):
        np.testing.assert_array_equal(waited[key], alone[key])


def test_a_program_compiled_ahead_is_the_one_called():
    """`quick_to_compile(...).ahead` compiles in the background; a later call with the
    same shapes and static values runs that program instead of tracing again."""
    traced = []

    @programs.quick_to_compile(static_argnames=("scale",))
    def scaled(x, scale):
        traced.append(scale)
        return x * scale

    scaled.ahead(jax.ShapeDtypeStruct((4,), np.float64), scale=2.0)
    x = np.arange(4.0)
    np.testing.assert_array_equal(scaled(x, 2.0), 2 * x)
    assert traced == [2.0]  # traced once, ahead of the call
    np.testing.assert_array_equal(scaled(x, 3.0), 3 * x)  # another static value
    np.testing.assert_array_equal(scaled(x[:3], 2.0), 2 * x[:3])  # another shape
    assert traced == [2.0, 3.0, 2.0]


@pytest.mark.slow
def test_releasing_the_programs_between_cells_changes_no_row(tiny_config, tmp_path):
    # A process that runs only sweeps drops each cell's compiled programs (its memory
    # stays flat over many cells); what it computes must not change.
    config = tiny_config(seeds=6, stop={"basin_grad": 1e-4, "polish_after": 500})
    run_sweep(config, tmp_path / "kept", RunOptions(progress=False, log=lambda _: None))
    released = RunOptions(progress=False, log=lambda _: None, release_programs=True)
    run_sweep(config, tmp_path / "released", released)
    # Only the last cell's programs are left (of the two cells of both sweeps).
    assert segments.train_segment._cache_size() == 1
    assert programs.compile.programs_compiled_ahead() <= 1
    kept, dropped = (
        load(tmp_path / name).sort_values(["k", "run"]).reset_index(drop=True)
        for name in ("kept", "released")
    )
    pd.testing.assert_frame_equal(kept, dropped)


def test_segments_grow_with_the_steps_runs_survive_before_any_has_ended():
    # A deep cell's runs all train to a first checkpoint at 10,000 steps: the median run
    # is at least that long, so segments need not stay at their shortest until one ends.
    segment = SegmentLength(0)
    assert segment.length == FIRST == SHORTEST
    segment.survived(np.array([160, 900]))  # 160 // 8 = 20: never shorter than before
    assert segment.length == SHORTEST
    segment.survived(np.array([10_000, 12_000]))
    assert segment.length == 10_000 // RUN_FRACTION
    segment.survived(np.array([10**7]))
    assert segment.length == 2048
    segment.observe(np.array([800, 800, 1600]))  # once runs end, their median decides
    assert segment.length == 100
    segment.survived(np.array([10**6]))
    assert segment.length == 100
    fixed = SegmentLength(500)
    fixed.survived(np.array([10**6]))
    assert fixed.length == 500


def test_segments_are_longer_only_where_a_runs_arithmetic_ignores_its_batch(tiny_config):
    """CPU chunks give a run the same bits in any batch, so their segments can be long.
    Batches compacted in a cell's tail change a run's shape, and so its last bits, at a
    time that depends on where segments end: those keep the segment lengths their stored
    results came from."""
    closed_form = tiny_config()
    on_data = tiny_config(problem={"kind": "empirical", "data": "gaussian", "samples": 50,
                                   "teacher": "orthonormal"})  # fmt: skip
    lengths = {}
    for name, config in [("closed form", closed_form), ("on data", on_data)]:
        engine = Engine(config)
        problem = problems.for_cell(config, config_module.cells(config)[0])
        engine.first_batch(12, train_spec(problem))
        segment = engine.segment_length(None)
        lengths[name] = (segment.fraction, segment.shortest, segment.length, engine.chunk > 0)
    assert lengths["closed form"] == (RUN_FRACTION, SHORTEST, FIRST, True)
    assert lengths["on data"] == (*COMPACTED, FIRST, False)  # the first: 32 steps, as before


@pytest.mark.parametrize("count", [1, 7, 100, 1000, 5000])
def test_a_cpu_starts_a_quarter_of_a_cell_and_an_accelerator_all_of_it(count):
    cpu = first_batch_size(count, devices=2, limit=512, chunk=4, platform="cpu")
    assert cpu == min(max(ladder(-(-count // 4), 2), 8), 512)  # at least a chunk per device
    gpu = first_batch_size(count, devices=2, limit=16384, chunk=0, platform="gpu")
    assert gpu == ladder(count, 2) >= count
    assert first_batch_size(count, 2, 64, 4, "cpu", fixed=True) == min(64, ladder(count, 2))
