import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sweep
from sweep import config as config_module
from sweep.commands.runner import RunOptions, run_sweep
from sweep.config import ConfigError
from sweep.results import runs_table
from sweep.results.store import ResultStore


@pytest.fixture
def finished(tiny_config, tmp_path_factory):
    """A tiny sweep run once, uninterrupted (shared by the tests below)."""
    out = tmp_path_factory.mktemp("sweeps") / "tiny"
    cfg = tiny_config()
    run_sweep(cfg, out, RunOptions(progress=False))
    return cfg, out, pd.read_parquet(out)


def test_one_row_per_run_with_plain_types(finished):
    cfg, out, frame = finished
    assert len(frame) == 2 * 12
    assert sorted(frame.groupby(["k", "n"]).size().index) == [(4, 4), (5, 5)]
    for column in ("k", "n", "d", "run", "steps", "seed"):
        assert frame[column].dtype == np.int64, column
    assert set(frame["status"]) <= {"global", "spurious", "saddle", "not_converged", "diverged"}
    row = frame.iloc[0]
    assert len(row["weights"]) == row["n"] * row["d"]
    assert frame.groupby("k")["run"].apply(sorted).map(list).tolist() == [list(range(12))] * 2


def test_metadata_and_manifest(finished):
    cfg, out, _ = finished
    files = sorted((out / "runs").glob("*.parquet"))
    assert len(files) == 6  # 2 cells x ceil(12 / 5) shards
    metadata = pq.read_schema(files[0]).metadata
    assert json.loads(metadata[b"sweep.config"])["seeds"] == 12
    assert set(json.loads(metadata[b"sweep.versions"])) >= {"jax", "jaxlib", "pyarrow", "sweep"}
    assert metadata[b"sweep.git_commit"]
    manifest = json.loads((out / runs_table.MANIFEST).read_text())
    assert len(manifest["shards"]) == 6
    assert (out / runs_table.CATALOGUE).exists()


def test_rerun_skips_complete_shards(finished):
    cfg, out, frame = finished
    said = []
    outcome = run_sweep(cfg, out, RunOptions(log=said.append, progress=False))
    assert outcome.runs_trained == 0 and "6 of 6 shards already complete" in said[0]
    pd.testing.assert_frame_equal(pd.read_parquet(out), frame)


def test_interrupted_sweep_resumes_to_the_same_rows(finished, tmp_path, monkeypatch):
    cfg, _, frame = finished
    out = tmp_path / "tiny"
    real_write = ResultStore.write
    written = []

    def write_then_die(store, shard, columns):
        if len(written) == 3:
            raise KeyboardInterrupt
        real_write(store, shard, columns)
        written.append(1)

    monkeypatch.setattr(ResultStore, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, out, RunOptions(progress=False))
    assert len(list((out / "runs").glob("*.parquet"))) == 3
    assert not list(out.glob(".*"))  # no temporary file left behind
    monkeypatch.setattr(ResultStore, "write", real_write)
    outcome = run_sweep(cfg, out, RunOptions(progress=False))
    assert outcome.shards_skipped == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out), frame)


def test_changed_config_is_refused_unless_fresh(finished, tiny_config, tmp_path):
    cfg, out, _ = finished
    other = tiny_config(seeds=7)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(ConfigError, match="sweep.seeds"):
        run_sweep(other, out, RunOptions(progress=False))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    fresh = tmp_path / "copy"
    run_sweep(cfg, fresh, RunOptions(progress=False))
    run_sweep(other, fresh, RunOptions(fresh=True, progress=False))
    assert len(pd.read_parquet(fresh)) == 2 * 7


def test_engine_settings_do_not_change_identity(tiny_config):
    a = tiny_config()
    b = config_module.from_dict({**a.to_raw(), "engine": {"batch_size": 3}})
    assert a.identity() == b.identity()


def test_load_reads_only_the_columns_asked_for(finished):
    _, out, frame = finished
    full = runs_table.load(out)
    some = runs_table.load(out, columns=["status", "loss"], k=5)
    assert list(some.columns) == ["status", "loss", "k", "n", "run"]
    expected = full[full["k"] == 5].reset_index(drop=True)[list(some.columns)]
    pd.testing.assert_frame_equal(some, expected)
    with pytest.raises(KeyError, match="colour"):
        runs_table.load(out, columns=["colour"])


def test_load_with_filters(finished):
    _, out, frame = finished
    subset = runs_table.load(out, k=4, run=[0, 1, 2])
    assert len(subset) == 3 and set(subset["k"]) == {4}
    with pytest.raises(KeyError):
        runs_table.load(out, colour="red")


def test_a_folder_that_holds_no_sweep_is_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="a sweep results folder"):
        runs_table.open_sweep(tmp_path)


def test_replay_from_python_names_a_bad_cell_or_run(finished):
    _, out, _ = finished
    with pytest.raises(ConfigError, match="a cell of this sweep"):
        sweep.replay(out, k=9, n=9, run=0)
    with pytest.raises(ConfigError, match="a run stored"):
        sweep.replay(out, k=4, n=4, run=99)


def test_default_folders_never_collide_for_different_configs():
    from sweep.results.runs_table import default_folder

    many = {"stop.max_steps": 1000, "optimizer.kind": "adam", "init.kind": "he",
            "optimizer.step_size": "1/k", "sweep.seed": 3}  # fmt: skip
    folders = [
        default_folder("default"),
        default_folder("default", settings={"optimizer.kind": "flow"}),
        default_folder("default", settings={"sweep.seed": 1}),
        default_folder("default", settings={"sweep.seed": 2}),
        default_folder("default", settings={"sweep.target_halfwidth": 0.05}),
        default_folder("default", k="6..8", settings={"sweep.target_halfwidth": 0.05}),
        default_folder("default", settings=many),
        default_folder("default", settings={**many, "sweep.seed": 4}),
    ]
    assert len(set(folders)) == len(folders)
    assert default_folder("default", settings={"optimizer.kind": "flow"}).name == (
        "default_kind=flow"
    )
    # The same settings in any order name the same folder.
    assert default_folder("x", settings=dict(reversed(many.items()))) == default_folder(
        "x", settings=many
    )


def test_load_refuses_what_is_not_a_sweep_in_one_line(tmp_path):
    import pandas as pd

    from sweep.config import ConfigError

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not parquet")
    for folder, said in ((tmp_path / "notes", "not a sweep results folder"),
                         (tmp_path / "missing", "no such folder")):  # fmt: skip
        with pytest.raises(ConfigError, match=said) as error:
            sweep.load(folder)
        assert "\n" not in str(error.value)
    # A folder of runs: an unknown status is refused, not an empty answer.
    runs = tmp_path / "copied"
    runs.mkdir()
    pd.DataFrame({"k": [6], "n": [6], "run": [0], "status": ["spurious"]}).to_parquet(
        runs / "part.parquet"
    )
    assert len(sweep.load(runs, status="spurious")) == 1
    with pytest.raises(ConfigError, match="status: expected one of global, spurious"):
        sweep.load(runs, status="spurius")
    # A critical folder: refused as runs, read as critical points from --out or critical/.
    table = tmp_path / "crit" / "critical"
    table.mkdir(parents=True)
    pd.DataFrame({"k": [6], "n": [6], "loss": [0.0]}).to_parquet(table / "k006-n006.parquet")
    with pytest.raises(ConfigError, match='table="critical"'):
        sweep.load(tmp_path / "crit")
    for folder in (tmp_path / "crit", table):
        assert len(sweep.load(folder, table="critical")) == 1
