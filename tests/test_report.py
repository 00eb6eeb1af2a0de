import pandas as pd
import pytest

from sweep.report import format_summary, summary, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 100)
    assert low == pytest.approx(0.02154, abs=1e-5)
    assert high == pytest.approx(0.11175, abs=1e-5)
    assert wilson_interval(0, 10)[0] == 0.0


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
