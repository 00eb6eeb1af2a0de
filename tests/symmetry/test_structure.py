import numpy as np
import pandas as pd
import pytest
from helpers import block_point, permuted, polish, spurious_point_k6

from sweep.diagnostics.catalogue import catalogue
from sweep.objectives import gaussian
from sweep.symmetry.canonical import canonical_form
from sweep.symmetry.structure import detect, symmetry_type


@pytest.fixture(scope="module")
def spurious_k6():
    return np.asarray(polish(spurious_point_k6(), gaussian.orthonormal_teacher(6)))


def test_types_of_known_points(spurious_k6):
    assert symmetry_type(spurious_k6) == "1+5"
    assert symmetry_type(np.eye(6)) == "6"
    assert symmetry_type(permuted(spurious_k6, 1)) == "1+5"
    assert symmetry_type(permuted(np.eye(6), 2)) == "6"


def test_two_block_type():
    # Groups {0, 1} and {2, 3, 4}: a I + b 11^T on the diagonal, constants elsewhere.
    w = np.full((5, 5), 0.1)
    w[:2, :2] = 0.2
    w[2:, 2:] = -0.3
    w[np.arange(5), np.arange(5)] += 1.0
    w[:2, 2:] = 0.05
    assert symmetry_type(permuted(w, 3)) == "2+3"


def test_points_without_structure_say_none(rng):
    assert symmetry_type(rng.standard_normal((6, 6))) == "none"
    assert symmetry_type(rng.standard_normal((7, 6))) == "none"


def test_canonical_form_is_invariant(spurious_k6):
    reference = canonical_form(spurious_k6)
    for seed in range(5):
        np.testing.assert_allclose(
            canonical_form(permuted(spurious_k6, seed)), reference, atol=1e-12
        )


def test_permuted_copies_merge_in_the_catalogue(spurious_k6):
    other = spurious_k6.copy()
    other[0, 0] += 0.1  # a different point
    points = [spurious_k6, permuted(spurious_k6, 7), other]
    runs = pd.DataFrame(
        {
            "sweep": "t",
            "k": 6,
            "n": 6,
            "d": 6,
            "run": [0, 1, 2],
            "status": "spurious",
            "symmetry": ["1+5", "1+5", "none"],
            "loss": [0.025, 0.025, 0.03],
            "min_eig": [0.0047, 0.0047, 0.001],
            "weights": [p.ravel() for p in points],
        }
    )
    table = catalogue(runs)
    assert table["status"].tolist() == ["spurious", "spurious"]
    assert table["multiplicity"].tolist() == [2, 1]
    assert table["example_run"].tolist() == [0, 2]
    assert table.iloc[0]["symmetry"] == "1+5"
    # The type [1, 5] minimum's spectrum by blocks: 12 distinct eigenvalues, the smallest
    # (0.0047) four times, in the standard representation of S_5; none for the other.
    assert table["eigenvalues"].tolist()[0] == 12
    assert table["min_eig_multiplicity"].tolist()[0] == 4
    assert table["min_eig_component"].tolist()[0] == "standard S5"
    assert table["eigenvalues"].isna().tolist() == [False, True]


def _refined_one_row_at_a_time(labels):
    """Colour refinement written plainly, with Python tuples: the reference for `_refine`."""

    def relabel(signatures):
        index = {s: i for i, s in enumerate(sorted(set(signatures)))}
        return [index[s] for s in signatures]

    def signature(colour, colours, entries):
        return colour, tuple(sorted(zip(colours, entries, strict=True)))

    n, d = labels.shape
    rows, cols = [0] * n, [0] * d
    while True:
        new_rows = relabel([signature(rows[i], cols, labels[i]) for i in range(n)])
        new_cols = relabel([signature(cols[j], rows, labels[:, j]) for j in range(d)])
        if len(set(new_rows)) == len(set(rows)) and len(set(new_cols)) == len(set(cols)):
            return new_rows, new_cols
        rows, cols = new_rows, new_cols


def test_colour_refinement_gives_the_plain_algorithms_colours(rng):
    """The vectorized refinement gives the very colours of the plain one, on random labels
    with few values (many ties, several rounds) and on structured points."""
    from sweep.symmetry import canonical

    cases = [rng.integers(0, values, size=(n, d)) for n, d, values in
             [(6, 6, 2), (9, 7, 3), (12, 12, 2), (5, 8, 4), (1, 1, 1), (20, 20, 3)]]  # fmt: skip
    block = np.full((8, 8), 0.3) + 0.5 * np.eye(8)
    block[:2, :2] = [[0.9, -0.1], [-0.1, 0.9]]
    cases += [canonical.labels(permuted(block, seed), 1e-5) for seed in range(3)]
    for labels in cases:
        rows, cols = canonical.refine(labels)
        want_rows, want_cols = _refined_one_row_at_a_time(labels)
        assert list(rows) == want_rows and list(cols) == want_cols


@pytest.mark.parametrize(
    "sizes, extra, expected, group",
    [
        ((1, 5), 0, "1+5", "Δ(S1×S5)"),
        ((4, 10), 1, "4+10|1", "Δ(S4×S10)"),
        ((2, 3, 9), 2, "2+3+9|1+1", "Δ(S2×S3×S9)"),
        ((7,), 1, "7|1", "Δ(S7)"),
    ],
)
def test_isotropy_of_hand_built_points(sizes, extra, expected, group):
    w = block_point(sizes, extra)
    found = detect(permuted(w, 5), k=sum(sizes))
    assert found.notation() == expected
    assert found.group() == group
    # The point is a fixed point of its structure: rebuilding it from its parameters
    # gives it back, and a permuted copy has the same type.
    np.testing.assert_allclose(found.point(found.theta(permuted(w, 5))), permuted(w, 5))
    assert symmetry_type(permuted(w, 9), k=sum(sizes)) == expected


def test_identical_neurons_and_coordinates_are_groups_of_their_own():
    w = block_point((2, 4), 0)
    w = np.vstack([w, w[-1]])  # a duplicated neuron of the size-4 block leaves S_3 there,
    found = detect(w, k=6)  # two identical neurons, and the duplicate's column alone
    assert found.notation() == "2+3|2|1"
    assert found.group() == "Δ(S2×S3) × S2 (rows)"
    twin = np.vstack([block_point((6,), 0), np.full((2, 6), 0.2)])  # two identical extras
    found = detect(twin, k=6)
    assert found.notation() == "6|2"
    assert found.group() == "Δ(S6) × S2 (rows)"


def test_a_nearly_symmetric_point_is_typed_within_the_tolerance_only(rng):
    w = block_point((1, 5))
    noisy = w + 1e-7 * rng.standard_normal(w.shape)
    assert symmetry_type(noisy, tol=1e-5) == "1+5"
    assert symmetry_type(noisy, tol=1e-9) == "none"
