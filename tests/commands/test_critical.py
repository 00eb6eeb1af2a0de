"""Critical points in fixed-point spaces, their symmetry-adapted spectra and their proofs
(`symmetry/`, `proofs/symmetric.py`, `python -m sweep critical`)."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from helpers import block_point, permuted

import sweep
from sweep.commands import critical
from sweep.commands.cli import main
from sweep.objectives import PopulationLoss, gaussian
from sweep.proofs import Claim, prove_point
from sweep.proofs.certificate import certify
from sweep.proofs.pipeline import judge
from sweep.proofs.symmetric import certify_symmetric, krawczyk_in_fix
from sweep.symmetry import fixed_points, isotypic
from sweep.symmetry.canonical import canonical_form
from sweep.symmetry.structure import detect


def dense_spectrum(weights, k):
    """The analytic Hessian's eigenvalues (autodiff is NaN at parallel neurons)."""
    teacher = gaussian.orthonormal_teacher(k, weights.shape[1])
    objective = PopulationLoss(n=weights.shape[0], d=weights.shape[1])
    hessian = objective.hessian(jnp.asarray(weights), teacher)
    return np.linalg.eigvalsh(np.asarray(hessian).reshape(weights.size, weights.size))


@pytest.fixture(scope="module")
def k6_points():
    return fixed_points.search(6, fixed_points.isotropy_types(6, ("k", "pairs")), starts=150)


def one(points, loss, index):
    found = [p for p in points if abs(p.loss - loss) < 1e-7 and p.index == index]
    assert len(found) == 1, f"F = {loss}, index {index}: {len(found)} points"
    return found[0]


@pytest.mark.parametrize(
    "sizes, extra", [((1, 5), 0), ((4, 10), 1), ((2, 3, 9), 2), ((7,), 1), ((3, 3), 0)]
)
def test_blocks_give_the_dense_spectrum_at_any_fixed_point(sizes, extra):
    # The Hessian commutes with G at every point of Fix(G), critical or not.
    w = permuted(block_point(sizes, extra), 4)
    k = sum(sizes)
    blocks = isotypic.spectrum(detect(w, k), w)
    np.testing.assert_allclose(isotypic.expanded(blocks), dense_spectrum(w, k), atol=1e-10)


def test_the_k6_points_of_the_literature(k6_points):
    """The type [1, 5] minimum, the two saddles of its fixed-point space, the fully
    symmetric minimum no Xavier run reaches, and the global minimum; each proved."""
    expected = [(0.0250806, 0, "1+5"), (0.0473958, 6, "1+5"), (0.0604630, 1, "1+5"),
                (0.0556686, 0, "6"), (0.0, 0, "6")]  # fmt: skip
    for loss, index, isotropy in expected:
        point = one(k6_points, loss, index)
        assert point.structure.notation() == isotropy
        np.testing.assert_allclose(
            isotypic.expanded(point.blocks), dense_spectrum(point.weights, 6), atol=1e-10
        )
        proof = prove_point(point.weights, 6, point.structure)
        assert judge(proof, Claim(negative=index)) == ("proved", ""), proof.reason
        assert proof.loss_low <= loss + 5e-8 and loss - 5e-8 <= proof.loss_high
        # A false claim about the same point fails, with its reason.
        verdict, reason = judge(proof, Claim(negative=index + 1))
        assert verdict == "failed" and f"not {index + 1}" in reason
    minimum = one(k6_points, 0.0250806, 0)
    low, multiplicity, _ = isotypic.smallest(minimum.blocks)
    assert abs(low - 0.0047004) < 1e-6  # Safran & Shamir's smallest eigenvalue


def test_symmetric_and_full_space_proofs_agree(k6_points):
    for loss, index in ((0.0250806, 0), (0.0473958, 6), (0.0604630, 1), (0.0556686, 0)):
        point = one(k6_points, loss, index)
        mine = certify_symmetric(point.weights, point.structure)
        full = certify(point.weights, 6)
        assert mine.proved and full.proved
        assert (mine.kind, mine.negative) == (full.kind, full.negative)
        assert mine.loss_low <= full.loss_high and full.loss_low <= mine.loss_high
        if index == 0:
            assert 0 < mine.min_eig_low <= isotypic.smallest(point.blocks)[0]


def test_false_claims_fail(k6_points):
    point = one(k6_points, 0.0250806, 0)
    structure = point.structure
    theta = structure.theta(point.weights)
    # Off the zero of the reduced gradient, Krawczyk's test cannot hold.
    assert not krawczyk_in_fix(structure, theta + 1e-6, 1e-12)[0]
    # A point that is no critical point: Newton moves it further than allowed.
    moved = certify_symmetric(point.weights + 1e-3 * (point.weights > 0), structure)
    assert not moved.proved and "Newton moves it" in moved.reason
    # The fully symmetric space does not hold the type [1, 5] minimum.
    wrong = fixed_points.template((6,), 6)
    assert not certify_symmetric(point.weights, wrong).proved


def test_isotropy_is_invariant_and_found_for_wider_students():
    w = permuted(block_point((4, 10), 1, seed=3), 11)
    found = detect(w, 14)
    assert found.notation() == "4+10|1"
    assert found.group() == "Δ(S4×S10)"
    blocks = isotypic.spectrum(found, w)
    assert sum(len(b.eigenvalues) for b in blocks) < w.size / 5


def test_the_command_writes_a_table_that_load_reads(tmp_path, capsys):
    out = tmp_path / "critical"
    code = main(["critical", "--k", "6", "--types", "k", "--starts", "24", "--out", str(out),
                 "--prove-index", "0"])  # fmt: skip
    assert code == 0
    table = sweep.load(out, table="critical")
    assert set(table["k"]) == {6}
    minima = table[table["index"] == 0].sort_values("loss")
    np.testing.assert_allclose(minima["loss"].iloc[:2], [0.0, 0.0556686], atol=1e-7)
    assert (minima["certified"] == "proved").all()
    assert (table.loc[table["index"] > 0, "certified"] == "skipped").all()
    # Each point is stored in canonical form, (n, d) row by row.
    first = table.iloc[0]
    weights = np.asarray(first["weights"])
    assert weights.size == first["n"] * first["d"]
    point = weights.reshape(first["n"], first["d"])
    np.testing.assert_array_equal(canonical_form(point), point)
    # A second run finds the table done and does not search again.
    assert main(["critical", "--k", "6", "--types", "k", "--out", str(out)]) == 0
    assert "already done" in capsys.readouterr().out


def test_bad_arguments_get_one_line(tmp_path, capsys):
    assert main(["critical", "--k", "6", "--types", "quads", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--types" in err[0]
    assert main(["critical", "--k", "6", "--sizes", "2+2", "--out", str(tmp_path)]) == 2
    assert "--sizes" in capsys.readouterr().err
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["critical", "--k", "6", "--types", "k", "--out", str(blocked)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out: cannot create")


def test_reached_joins_a_sweeps_catalogue(k6_points):
    rows = []
    for loss, index in ((0.0, 0), (0.0250806, 0), (0.0556686, 0)):
        point = one(k6_points, loss, index)
        rows.append({"k": 6, "n": 6, "d": 6, "isotropy": point.structure.notation(),
                     "loss": point.loss, "index": 0, "kind": "minimum", "min_eig": 0.0,
                     "searched": "6",
                     "weights": canonical_form(point.weights).ravel()})  # fmt: skip
    table = pd.DataFrame(rows)
    spurious = one(k6_points, 0.0250806, 0).weights
    catalogue = pd.DataFrame({
        "k": [6, 6], "n": [6, 6], "d": [6, 6], "status": ["spurious", "global"],
        "symmetry": ["1+5", "6"], "loss": [0.025, 0.0], "min_eig": [0.0047, 0.09],
        "multiplicity": [3, 97],
        "weights": [permuted(spurious, 2).ravel(), np.eye(6).ravel()],
    })  # fmt: skip
    joined = critical.reached(table, catalogue).set_index("loss")
    assert joined["runs"].tolist() == [97, 3, 0]  # the fully symmetric minimum: no run


def _assert_not_minima_with_one_neuron_more(rows: pd.DataFrame) -> None:
    """Both fates proved: a neuron more at zero, and any neuron split."""
    assert (rows["fate_n_plus_1"] == "not a minimum").all()
    assert (rows["fate_split"] == "not a minimum").all()
    assert (rows["fate_slope"] < 0).all() and (rows["fate_split_bound"] < 0).all()


def test_wider_students_get_an_extra_neuron_in_every_type(tmp_path):
    out = tmp_path / "wide"
    assert main(["critical", "--k", "7", "--n", "k+1", "--types", "", "--sizes", "1+k-1",
                 "--starts", "48", "--out", str(out), "--prove-index", "0"]) == 0  # fmt: skip
    table = sweep.load(out, table="critical")
    assert set(table["n"]) == {8} and set(table["d"]) == {7}
    minima = table[table["index"] == 0]
    assert len(minima) and (minima["certified"] == "proved").all()
    assert "1+6|1" in set(minima["isotropy"])
    # a spurious minimum of n = k + 1 gets its fates at n = k + 2, like those of n = k
    spurious = minima[minima["loss"] > 1e-9]
    assert len(spurious)
    _assert_not_minima_with_one_neuron_more(spurious)


def test_parallel_neurons_mark_a_manifold_of_critical_points():
    u = np.array([0.6, 0.8, 0.0])
    v = np.array([0.0, 0.0, 1.0])
    split = np.stack([u, u, v])  # 2u shared between two neurons
    assert fixed_points.parallel_groups(split) == [[0, 1], [2]]
    shared = np.stack([2 * u, 0.5 * v, 0.5 * v])
    assert fixed_points.parallel_groups(shared) == [[0], [1, 2]]
    # 2u + v, however the norm is shared: one network function; 2u + 2v is another.
    function = fixed_points.network_function(shared)
    for same in (split, np.stack([2 * u, v / 4, 3 * v / 4])):
        np.testing.assert_allclose(function, fixed_points.network_function(same))
    other = fixed_points.network_function(np.stack([u, u, 2 * v]))
    assert not np.allclose(function, other)


@pytest.mark.slow
def test_critical_lists_each_network_function_once_and_proves_no_manifold(tmp_path):
    out = tmp_path / "critical"
    assert main(["critical", "--k", "6", "--types", "pairs", "--starts", "48",
                 "--out", str(out)]) == 0  # fmt: skip
    table = sweep.load(out, table="critical")
    lines = table[table["manifold_dim"] > 0]
    assert len(lines) and (lines["certified"] == "skipped").all()
    assert lines["reason"].str.contains("not isolated: .* neurons point the same way").all()
    isolated = table[table["manifold_dim"] == 0]
    assert (isolated["certified"] == "proved").all()
    functions = [fixed_points.network_function(np.reshape(w, (6, 6))) for w in table["weights"]]
    for i in range(len(functions)):
        for j in range(i):
            assert not np.allclose(functions[i], functions[j], atol=1e-6), (i, j)


def erf_pair(a, b):
    """E[erf(a.x/sqrt2) erf(b.x/sqrt2)], Saad & Solla's formula, written here anew."""
    return 2 / np.pi * np.arcsin(a @ b / np.sqrt((1 + a @ a) * (1 + b @ b)))


def test_the_erf_plateau_is_found_with_its_index(tmp_path, capsys):
    # The soft committee machine's symmetric plateau: every student neuron the same,
    # b (1, ..., 1) with b = 1/sqrt(k (2k - 1)); a saddle with k - 1 zero eigenvalues.
    k = 3
    out = tmp_path / "erf"
    assert main(["critical", "--k", "3", "--types", "k", "--activation", "erf",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "k003-n003-erf.parquet" in {p.name for p in (out / "critical").iterdir()}
    table = sweep.load(out, table="critical")
    assert set(table["activation"]) == {"erf"}
    weights = np.stack(table["weights"]).reshape(len(table), k, k)
    flat = np.abs(weights - 1 / np.sqrt(k * (2 * k - 1))).max(axis=(1, 2)) < 1e-4
    assert flat.sum() == 1
    plateau = table[flat].iloc[0]
    w, teacher = weights[flat][0], np.eye(k)
    loss = (0.5 * sum(erf_pair(a, b) for a in w for b in w)
            - sum(erf_pair(a, v) for a in w for v in teacher)
            + 0.5 * sum(erf_pair(u, v) for u in teacher for v in teacher))  # fmt: skip
    assert abs(plateau["loss"] - loss) < 1e-10
    assert plateau["nullity"] == k - 1 and plateau["index"] == (k - 1) ** 2
    assert plateau["kind"] == "saddle" and plateau["certified"] == "skipped"
    assert plateau["reason"].startswith("degenerate: 2 zero Hessian eigenvalues")
    # The global minimum and the nondegenerate points are proved (ball arithmetic on the
    # arcsine kernel), none escaped to infinity.
    nondegenerate = table[table["nullity"] == 0]
    assert (nondegenerate["certified"] == "proved").all()
    assert (nondegenerate["loss"].abs() < 1e-12).sum() == 1
    assert np.abs(weights).max() < 100


def test_an_unknown_activation_gets_one_line(tmp_path, capsys):
    code = main(["critical", "--k", "3", "--activation", "nosuch.module.fn",
                 "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--activation" in err[0]


def test_following_finds_what_few_random_starts_miss(tmp_path):
    # Four random starts per type at k = 9, 10: seeding each type with its neighbours'
    # points (and k = 10 with k = 9's) finds more minima, and keeps every row the random
    # starts gave as it was.
    def minima(follow):
        out = tmp_path / str(follow)
        table = critical.find_critical((9, 10), out, ("pairs",), starts=4, prove_index=-1,
                                       follow=follow, log=lambda _: None)  # fmt: skip
        return table, table[table["kind"] == "minimum"]

    alone, few = minima(False)
    followed, more = minima(True)
    assert len(more) > len(few)
    assert set(more["isotropy"]) > set(few["isotropy"])
    shown = ["k", "isotropy", "loss", "index", "found", "min_eig"]
    kept = followed[followed["found"] > 0][shown].sort_values(["k", "loss"], ignore_index=True)
    pd.testing.assert_frame_equal(kept, alone[shown].sort_values(["k", "loss"], ignore_index=True))
    # every point has a family, at most one point of a family per k, and a family is
    # found at consecutive k
    assert followed["family"].notna().all() and alone["family"].isna().all()
    assert not followed.duplicated(["k", "family"]).any()
    spans = followed.groupby("family")["k"].agg(["min", "max", "count"])
    assert (spans["max"] - spans["min"] + 1 == spans["count"]).all()
    # the Delta(S_1 x S_k-1) minimum of k = 9 is the one of k = 10 (one family)
    ones = more[more["isotropy"].isin(["1+8", "1+9"])].sort_values("loss").groupby("k").head(1)
    assert len(ones) == 2 and ones["family"].nunique() == 1
    assert ones["family"].iloc[0].startswith("1+k-1@2.0:")


def test_families_over_a_range_name_points_the_search_missed_too(tmp_path):
    # followed down from k = 8, a family's curve passes k = 7 and 6 where random starts
    # missed it: its points there are added, with found = 0, and every one is critical
    table = critical.find_critical((6, 7, 8), tmp_path, ("pairs",), starts=8, prove_index=-1,
                                   log=lambda _: None)  # fmt: skip
    added = table[(table["found"] == 0) & (table["k"] < 8)]
    assert len(added)
    for row in added.itertuples():
        weights = jnp.asarray(np.reshape(row.weights, (row.n, row.d)))
        teacher = gaussian.orthonormal_teacher(row.k, row.d)
        # as critical as the search's own points (their parameters rounded to 1e-9)
        assert np.max(np.abs(gaussian.grad(weights, teacher))) < 1e-8
    assert not table.duplicated(["k", "family"]).any()


def test_a_resumed_search_keeps_the_families_names(tmp_path):
    def run(out, k_values):
        return critical.find_critical(k_values, out, ("pairs",), starts=4, prove_index=-1,
                                      log=lambda _: None)  # fmt: skip

    whole = run(tmp_path / "whole", (9, 10))
    run(tmp_path / "resumed", (9,))
    resumed = run(tmp_path / "resumed", (9, 10))  # k = 9 read back, k = 10 searched

    def names(table):
        cell = table[table["k"] == 10]
        return {np.round(w, 7).tobytes(): f for w, f in zip(cell["weights"], cell["family"],
                                                            strict=True)}  # fmt: skip

    one, other = names(whole), names(resumed)
    shared = set(one) & set(other)
    assert len(shared) > 10
    assert all(one[key] == other[key] for key in shared)


def test_a_table_written_before_families_resumes(tmp_path):
    critical.find_critical((6,), tmp_path, ("pairs",), starts=8, prove_index=-1,
                           log=lambda _: None)  # fmt: skip
    path = critical.table_path(tmp_path, 6, 6)
    old = pd.read_parquet(path).drop(columns=["family", "family_start", "start_reason",
                                              "family_end", "end_reason"])  # fmt: skip
    old.to_parquet(path, index=False)
    table = critical.find_critical((6, 7), tmp_path, ("pairs",), starts=8, prove_index=-1,
                                   log=lambda _: None)  # fmt: skip
    assert table[table["k"] == 7]["family"].notna().all()


def test_minima_get_their_fates_with_one_neuron_more(tmp_path):
    table = critical.find_critical((6,), tmp_path, ("k", "pairs"), prove_index=0, workers=1,
                                   log=lambda _: None)  # fmt: skip
    minima = table[table["kind"] == "minimum"]
    spurious = minima[minima["loss"] > 1e-9]
    assert len(spurious) == 2  # 1+5 and the symmetric point
    _assert_not_minima_with_one_neuron_more(spurious)
    assert set(minima[minima["loss"] <= 1e-9]["fate_split"]) == {"global"}
    saddles = table[table["kind"] != "minimum"]
    assert (saddles["fate_split"] == "").all() and saddles["fate_split_bound"].isna().all()
