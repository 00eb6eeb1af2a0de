import pandas as pd
import pytest

from sweep.reports import format_summary, summary, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 100)
    assert low == pytest.approx(0.02154, abs=1e-5)
    assert high == pytest.approx(0.11175, abs=1e-5)
    assert wilson_interval(0, 10)[0] == 0.0
    # Exactly 0 and 1 at the ends, at any number of runs (no 1e-16 of rounding).
    assert all(wilson_interval(0, t)[0] == 0.0 and wilson_interval(t, t)[1] == 1.0
               for t in (1, 7, 300, 1000, 12345))  # fmt: skip


def test_summary_counts_and_means():
    frame = pd.DataFrame(
        {
            "k": [6] * 4 + [7] * 2,
            "n": [6] * 4 + [7] * 2,
            "status": ["global", "spurious", "spurious", "not_converged", "global", "saddle"],
            "loss": [0.0, 0.02, 0.04, 0.1, 0.0, 0.3],
            "min_eig": [0.09, 0.004, 0.006, None, 0.09, -0.2],
            "steps": [10, 20, 30, 40, 5, 7],
        }
    )
    table = summary(frame)
    first = table.iloc[0]
    assert (first["runs"], first["global"], first["spurious"], first["not_converged"]) == (
        4,
        1,
        2,
        1,
    )
    assert first["spurious_%"] == 50.0
    assert first["spurious_mean_loss"] == pytest.approx(0.03)
    assert first["spurious_mean_min_eig"] == pytest.approx(0.005)
    assert first["median_steps"] == 25
    assert table.iloc[1]["saddle"] == 1
    text = format_summary(table)
    assert text.count("\n") == 3 and "50.0" in text


@pytest.mark.slow
def test_report_and_replay_on_a_tiny_sweep(tmp_path, capsys):
    from PIL import Image

    from sweep.commands.cli import main

    out = tmp_path / "tiny"
    assert main(["run", "--k", "6..7", "--seeds", "20", "--no-progress", "--out", str(out)]) == 0
    reference = tmp_path / "published.csv"
    reference.write_text("k,n,spurious_pct\n6,6,0.3\n7,7,5.5\n")
    capsys.readouterr()
    assert main(["report", str(out), "--reference", str(reference)]) == 0
    printed = capsys.readouterr().out
    assert "distinct minima" in printed and "Against the published values" in printed
    for name in ("spurious_rate_vs_k", "spurious_objectives", "steps_to_converge"):
        with Image.open(out / "_report" / f"{name}.png") as image:
            assert image.size[0] > 400 and image.size[1] > 300

    assert main(["replay", str(out), "--k", "7", "--n", "7", "--run", "3"]) == 0
    assert "matches the stored row" in capsys.readouterr().out
    history = pd.read_parquet(out / "_replay" / "k07-n07-r0000003.parquet")
    stored = pd.read_parquet(out)
    row = stored[(stored["k"] == 7) & (stored["run"] == 3)].iloc[0]
    assert len(history) == row["steps"] + 1
    if row["stop_reason"] == "basin":  # gradient descent's part ends where Newton took over
        assert history["grad_norm"].iloc[-1] <= 1e-4
        assert history["loss"].iloc[-1] >= row["loss"]
    else:
        assert history["loss"].iloc[-1] == pytest.approx(row["loss"], abs=1e-9)
    # The folder still reads as runs only.
    assert len(pd.read_parquet(out)) == 40

    assert main(["replay", str(out), "--k", "9", "--n", "9", "--run", "3"]) == 2
    assert "--k/--n: expected a cell of this sweep" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_replay_of_a_polished_run_ends_where_the_sweep_did(tmp_path, capsys):
    from sweep.commands.cli import main

    out = tmp_path / "polished"
    argv = ["run", "--k", "4", "--seeds", "12", "--no-progress", "--out", str(out)]
    polish = ["--set", "stop.loss_tol=0", "--set", "stop.polish_after=150"]
    assert main([*argv, *polish, "--set", "stop.basin_grad=0"]) == 0
    stored = pd.read_parquet(out)
    polished = stored[stored["stop_reason"] == "newton"]
    assert len(polished), "no run reached the polish"
    run = int(polished["run"].iloc[0])
    capsys.readouterr()
    assert main(["replay", str(out), "--k", "4", "--n", "4", "--run", str(run)]) == 0
    assert "matches the stored row" in capsys.readouterr().out


def test_the_published_table_ships_with_the_package_and_applies_only_to_its_protocol(
    tmp_path, monkeypatch
):
    import pandas as pd

    from sweep import config as config_module
    from sweep.reports.published import published_for

    monkeypatch.chdir(tmp_path)  # wherever the user stands
    cells = pd.DataFrame({"k": [6, 7, 30], "n": [6, 8, 30]})
    rows, why = published_for(config_module.from_dict({}), cells)
    assert why == "" and rows[["k", "n"]].values.tolist() == [[6, 6]]
    flow = config_module.from_dict({"optimizer": {"kind": "flow"}})
    rows, why = published_for(flow, cells)
    assert rows is None and "optimizer.kind = flow (published: gd)" in why
    grid = config_module.from_dict({"grid": {"optimizer.step_size": ["1/k", "5/k"]}})
    assert "a [grid] axis over optimizer.step_size" in published_for(grid, cells)[1]
    wide = pd.DataFrame({"k": [6], "n": [7]})
    rows, why = published_for(config_module.from_dict({}), wide)
    assert rows is None and "none for this sweep's cells" in why
