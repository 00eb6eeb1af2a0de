"""`python -m sweep certify`: every distinct point of a sweep proved, each run mapped onto
its proven box, and the tables a paper needs."""

import numpy as np
import pandas as pd
import pytest
from helpers import family

import sweep
from sweep.commands.cli import main


def paper_sweep(out, k, seeds):
    """The command line of a small sweep with Safran & Shamir's protocol into `out`."""
    return ["run", "configs/safran_shamir_2018.toml", "--k", k, "--seeds", str(seeds),
            "--no-progress", "--out", str(out)]  # fmt: skip


@pytest.mark.slow
def test_a_sweep_is_certified_point_by_point_and_run_by_run(tmp_path, capsys):
    out = tmp_path / "ss"
    argv = paper_sweep(out, "6..8", 40)
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["certify", str(out), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "points | proved | failed | skipped" in printed
    table = sweep.load(out, table="catalogue")
    assert set(table["status"]) >= {"global", "spurious"}
    assert (table["certified"] == "proved").all(), table[["status", "reason"]]
    spurious = table[table["status"] == "spurious"]
    assert (spurious["loss_low"] > 0).all() and (spurious["min_eig_low"] > 0).all()
    # The stored loss is a float64 value at a point of the box: inside, up to its rounding.
    assert (spurious["loss_low"] - 1e-14 <= spurious["loss"]).all()
    assert (spurious["loss"] <= spurious["loss_high"] + 1e-14).all()
    assert (spurious["loss_high"] - spurious["loss_low"] <= 1e-9).all()
    runs = sweep.load(out)
    assert runs["certified"].dtype == bool and len(runs) == 120
    catalogued = runs["status"].isin(["global", "spurious", "saddle"])
    assert runs.loc[catalogued, "certified"].all()
    assert main(["report", str(out)]) == 0
    assert "Proven minima" in capsys.readouterr().out
    latex = (out / "_report" / "certified_minima.tex").read_text()
    assert latex.count(r"\\") == 1 + len(table)  # header and one line per proven minimum
    # A shard trained again rewrites the catalogue: the old proofs and verdicts go with it.
    shard = sorted((out / "runs").glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:3000])
    assert main(argv) == 0
    assert "certified" not in sweep.load(out).columns
    assert "certified" not in sweep.load(out, table="catalogue").columns


@pytest.mark.slow
def test_wider_students_global_minima_are_skipped_as_a_continuum(tmp_path, capsys):
    out = tmp_path / "wide"
    argv = ["run", "--k", "4", "--n", "k+1", "--seeds", "8", "--no-progress", "--out", str(out),
            "--set", "classify.certify=true"]  # fmt: skip
    assert main(argv) == 0  # certifies at the end of the sweep
    table = sweep.load(out, table="catalogue")
    glob = table[table["status"] == "global"].iloc[0]
    assert glob["certified"] == "skipped" and "non-isolated, F = 0" in glob["reason"]
    assert not sweep.load(out)["certified"].any()
    # The proofs changed no result: the same command resumes as a finished sweep.
    capsys.readouterr()
    assert main(argv) == 0 and "already complete" in capsys.readouterr().out
    # A fresh sweep in its place keeps no verdict of the old one.
    assert main([*argv[:-2], "--fresh"]) == 0
    assert "certified" not in sweep.load(out).columns


@pytest.mark.slow
def test_a_moved_catalogue_point_fails_with_its_reason(tmp_path, capsys):
    from sweep.commands.certify import certify_sweep
    from sweep.results.store import write_catalogue

    out = tmp_path / "ss"
    argv = paper_sweep(out, "7", 30)
    assert main(argv) == 0
    table = sweep.load(out, table="catalogue")
    table["weights"] = [np.asarray(w) + 1e-3 for w in table["weights"]]
    write_catalogue(out, table)
    found = certify_sweep(out, workers=1, log=lambda *_: None)
    assert (found["certified"] == "failed").all()
    assert found["reason"].str.contains("not a critical point near the stored point").all()
    assert not pd.read_parquet(out / "_certified.parquet")["certified"].any()


@pytest.mark.slow
def test_a_catalogued_saddle_is_proved_a_saddle_and_a_mislabel_fails(tmp_path):
    from sweep.commands.certify import certify_sweep
    from sweep.results.store import write_catalogue

    out = tmp_path / "ss"
    argv = paper_sweep(out, "6", 10)
    assert main(argv) == 0
    table = sweep.load(out, table="catalogue")
    saddle = family(0.0932746, 0.1161813, 0.1753699, 1.102762, -0.0509073).ravel()
    extra = table.iloc[:1].assign(status="saddle", weights=[saddle], point=len(table))
    mislabel = extra.assign(status="spurious", point=len(table) + 1)
    write_catalogue(out, pd.concat([table, extra, mislabel], ignore_index=True))
    found = certify_sweep(out, workers=1, log=lambda *_: None).set_index("point")
    assert found.loc[len(table), "certified"] == "proved"
    assert found.loc[len(table), "negative"] == 1
    assert found.loc[len(table) + 1, "certified"] == "failed"
    assert "proved a saddle (1 negative eigenvalues)" in found.loc[len(table) + 1, "reason"]
