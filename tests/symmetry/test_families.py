"""Families of critical points followed in real k: published values far from where a
point was found, folds, names, and the summary of a table."""

import numpy as np
import pandas as pd
import pytest

from sweep.symmetry import families, fixed_points, reduced


@pytest.fixture(scope="module")
def k7_pairs():
    points = fixed_points.search(7, [(1, 6)], starts=96)
    candidates = []
    for point in points:
        structure = fixed_points.template(point.searched, 7)
        candidates.append((structure, structure.theta(point.weights), 1))
    return points, candidates


def test_the_published_minimum_at_k_7_followed_to_k_41(k7_pairs):
    # Safran, Yehudai & Shamir (2021): the Delta(S_1 x S_k-1) minimum, F = 0.0232027 at
    # k = 7 and F = 0.0061805 at k = 41
    points, candidates = k7_pairs
    i = next(i for i, p in enumerate(points) if abs(p.loss - 0.0232027) < 1e-7)
    path = families.follow([candidates[i]], 41)[0]
    assert path.reason == "" and set(path.crossed) == set(range(7, 42))
    structure = fixed_points.template((1, 40), 41)
    assert reduced.value(structure, path.crossed[41]) == pytest.approx(0.0061805, abs=1e-7)
    assert np.max(np.abs(reduced.gradient(structure, path.crossed[41]))) < 1e-10
    back = families.follow([candidates[i]], 1)[0]
    assert back.reason == "floor" and back.end == 2.0
    first = min(back.crossed)  # the first integer k its curve reaches
    loss = reduced.value(fixed_points.template((1, first - 1), first), back.crossed[first])
    assert families.name(structure, back.end, loss) == f"1+k-1@2.0:{loss:.4g}"
    # a curve from a floor point is told apart by F one integer on as well
    assert families.name(structure, 2.0, 0.024123, 0.028019) == "1+k-1@2.0:0.02412,0.02802"
    assert families.name(structure, 3.0, -2.2e-16) == "1+k-1@3.0:0"  # F = 0, rounded


def test_a_curve_ends_at_a_fold(k7_pairs):
    points, candidates = k7_pairs
    i = next(i for i, p in enumerate(points) if abs(p.loss - 0.1147259) < 1e-6)
    path = families.follow([candidates[i]], 20)[0]
    assert path.reason == "fold" and 15 < path.end < 16
    assert max(path.crossed) == 15  # no point of this curve at k = 16
    # at k = 15 it is still a critical point; Newton from it at k = 16 finds none nearby
    structure = fixed_points.template((1, 14), 15)
    assert np.max(np.abs(reduced.gradient(structure, path.crossed[15]))) < 1e-10


def test_names_give_the_fixed_blocks_the_growing_one_and_the_start():
    assert families.pattern(fixed_points.template((31, 69), 100)) == "31+k-31"
    assert families.pattern(fixed_points.template((1, 6, 12), 19)) == "1+6+k-7"
    assert families.pattern(fixed_points.template((14,), 14, 1)) == "k|1"
    assert families.floor(fixed_points.template((31, 69), 100)) == 62
    assert families.floor(fixed_points.template((7,), 7)) == 1


def test_summary_lists_each_family_with_its_index_along_k():
    table = pd.DataFrame({
        "family": ["a@2.0"] * 4 + ["b@3.5"] * 2, "k": [6, 7, 8, 9, 8, 9],
        "index": [6, 0, 0, 0, 2, 3], "loss": [0.5, 0.4, 0.3, 0.2, 0.6, 0.7],
        "family_start": [2.0] * 4 + [3.5] * 2, "start_reason": ["floor"] * 4 + ["fold"] * 2,
        "family_end": [np.nan] * 4 + [np.nan, 9.25], "end_reason": [""] * 5 + ["fold"],
    })  # fmt: skip
    summary = families.summary(table).set_index("family")
    assert summary.loc["a@2.0", "index"] == "6 (k 6), 0 (k 7..9)"
    assert summary.loc["a@2.0", "minimum_at"] == "7..9"
    assert summary.loc["a@2.0", "ends"] == "beyond k = 9"
    assert summary.loc["b@3.5", "starts"] == "fold at k = 3.50"
    assert summary.loc["b@3.5", "ends"] == "fold at k = 9.25"
    assert summary.loc["b@3.5", "minimum_at"] == ""
