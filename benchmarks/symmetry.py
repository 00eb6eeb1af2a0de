"""Symmetry figures for the docs (`docs/generated/symmetry.md`, `family_1_k-1.png`).

    python benchmarks/symmetry.py --table1 DIR --k50 DIR --critical DIR --family DIR

- Spectra: for every distinct point with a group in a sweep's catalogue (Table 1 of
  configs/safran_shamir_2018.toml, k = 6..20), the symmetry-adapted spectrum against the
  dense analytic Hessian's at the same point (its symmetric critical point); at k = 50,
  the smallest block eigenvalue against Lanczos on Hessian-vector products.
- Critical points beside gradient descent: per k, the minima `python -m sweep critical`
  found in fixed-point spaces, which of them the sweep's runs reached and how often.
- The Delta(S_1 x S_k-1) family over k: F, the smallest eigenvalue and the five entries
  of W fitted as series in 1/sqrt(k), and plotted against k.
"""

import argparse
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from provenance import stamp  # noqa: E402

import sweep
from sweep.commands import critical
from sweep.diagnostics.spectrum import matrix_free_min_eigenvalues
from sweep.objectives import PopulationLoss, gaussian
from sweep.symmetry import isotypic
from sweep.symmetry.structure import detect

OUT = Path(__file__).resolve().parents[1] / "docs" / "generated"


def _symmetric_points(folder: str):
    """(row, structure's point, blocks, objective, teacher) for each catalogued point with
    a group: the blocks were computed at the symmetric critical point near the stored one,
    and so is everything compared with them."""
    for row in sweep.load(folder, table="catalogue").itertuples():
        w = np.reshape(row.weights, (row.n, row.d))
        found = isotypic.at_point(w, int(row.k), 1e-6)
        if found is None:
            continue
        _, point, blocks = found
        with jax.enable_x64(True):
            teacher = gaussian.orthonormal_teacher(int(row.k), row.d)
        yield row, point, blocks, PopulationLoss(n=row.n, d=row.d), teacher


def spectra_against_dense(folder: str) -> list[str]:
    lines = ["| k | distinct points | with a group | largest difference | multiplicities |",
             "|---|---|---|---|---|"]  # fmt: skip
    counts = sweep.load(folder, table="catalogue").groupby("k").size()
    worst, grouped, same = {}, {}, {}
    for row, point, blocks, objective, teacher in _symmetric_points(folder):
        with jax.enable_x64(True):
            hessian = np.asarray(objective.hessian(point, teacher))
        dense = np.linalg.eigvalsh(hessian.reshape(point.size, point.size))
        mine = isotypic.expanded(blocks)
        same[row.k] = same.get(row.k, True) and len(mine) == len(dense)
        worst[row.k] = max(worst.get(row.k, 0.0), float(np.max(np.abs(mine - dense))))
        grouped[row.k] = grouped.get(row.k, 0) + 1
    for k, total in counts.items():
        lines.append(f"| {k} | {total} | {grouped.get(k, 0)} | {worst.get(k, 0.0):.1e} | "
                     f"{'all equal' if same.get(k, True) else 'differ'} |")  # fmt: skip
    return lines


def lanczos_at_50(folder: str) -> list[str]:
    worst, count = 0.0, 0
    for _, point, blocks, objective, teacher in _symmetric_points(folder):
        with jax.enable_x64(True):
            lanczos = matrix_free_min_eigenvalues(point[None], teacher, objective)[0]
        worst = max(worst, abs(lanczos - isotypic.smallest(blocks)[0]))
        count += 1
    return [f"k = 50: {count} distinct points with a group; the smallest block eigenvalue "
            f"and Lanczos (300 steps) differ by at most {worst:.1e}."]  # fmt: skip


def beside_descent(critical_folder: str, sweep_folder: str) -> list[str]:
    table = sweep.load(critical_folder, table="critical")
    catalogue = sweep.load(sweep_folder, table="catalogue")
    joined = critical.reached(table, catalogue)
    lines = ["| k | critical points (minima, proved) | minima reached by runs (type: runs) "
             "| minima no run reached (type F) | runs' points in no searched space |",
             "|---|---|---|---|---|"]  # fmt: skip
    for k, cell in joined.groupby("k"):
        searched = cell[cell["searched"] != ""]
        minima = searched[searched["index"] == 0]
        proved = int((minima["certified"] == "proved").sum())
        hit = minima[minima["runs"] > 0]
        missed = minima[minima["runs"] == 0]
        outside = cell[cell["searched"] == ""]
        lines.append(
            f"| {k} | {len(searched)} ({len(minima)}, {proved}) | "
            + ", ".join(f"{r.isotropy}: {r.runs}" for r in hit.itertuples())
            + " | "
            + ", ".join(f"{r.isotropy} {r.loss:.5f}" for r in missed.itertuples())
            + " | "
            + (", ".join(f"{r.isotropy} ({r.runs})" for r in outside.itertuples()) or "none")
            + " |"
        )
    return lines


def family(folder: str) -> list[str]:
    table = sweep.load(folder, table="critical")
    rows = []
    for k, cell in table.groupby("k"):
        chosen = cell[(cell["isotropy"] == f"1+{k - 1}") & (cell["index"] == 0)]
        if len(chosen):
            rows.append(chosen.sort_values("loss").iloc[0])
    fam = pd.DataFrame(rows)
    ks = fam["k"].to_numpy(float)
    s = 1 / np.sqrt(ks)
    basis = np.stack([s**j for j in range(5)], axis=1)
    entries = np.stack([_entries(np.reshape(w, (int(k), int(k))))
                        for w, k in zip(fam["weights"], ks, strict=True)])  # fmt: skip
    series = {"k F": ks * fam["loss"].to_numpy(), "smallest eigenvalue": fam["min_eig"].to_numpy()}
    names = ["a (own coordinate)", "b (own row, others)", "c (others, own column)",
             "d (diagonal of the block)", "e (off-diagonal)"]  # fmt: skip
    series.update({name: entries[:, i] for i, name in enumerate(names)})
    lines = [f"The Delta(S_1 x S_k-1) minimum of lowest loss at each k = {int(ks[0])}.."
             f"{int(ks[-1])} ({len(fam)} values of k; {int((fam['certified'] == 'proved').sum())} "
             "proved). Least-squares fits c0 + c1 s + ... + c4 s^4 in s = 1/sqrt(k):",
             "", "| quantity | c0 | c1 | c2 | c3 | c4 | largest residual |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, values in series.items():
        coefficients, *_ = np.linalg.lstsq(basis, values, rcond=None)
        residual = float(np.max(np.abs(basis @ coefficients - values)))
        lines.append(f"| {name} | " + " | ".join(f"{c:.5g}" for c in coefficients)
                     + f" | {residual:.1e} |")  # fmt: skip
    _plot(ks, series, basis)
    symmetric = []  # the fully symmetric minimum W = a I + b 11^T (F > 0), lowest loss
    for k, cell in table.groupby("k"):
        chosen = cell[(cell["isotropy"] == str(k)) & (cell["index"] == 0) & (cell["loss"] > 1e-9)]
        if len(chosen):
            symmetric.append((k, chosen["loss"].min()))
    shown = [(k, f) for k, f in symmetric if k in (6, 10, 20, 50, 100)]
    lines += ["", "k F of this family tends to a constant (F decays like 1/k), while the loss "
              "of the fully symmetric minimum, also in this space, grows and flattens, as a "
              "positive limit would: " + ", ".join(f"F = {f:.5f} at k = {k}" for k, f in shown)
              + ". Arjevani & Field describe both behaviours for families of spurious "
              "minima (loss decaying like 1/k for some types, converging to a positive "
              "constant for others)."]  # fmt: skip
    return lines


def _entries(w):
    """(a, b, c, d, e) of a Delta(S_1 x S_k-1) point: W[i,i] and W[i,j], W[j,i] for the
    distinguished index i and any other j, then the diagonal and off-diagonal entries of
    the other k - 1 rows and columns."""
    structure = detect(w, len(w), 1e-8)
    sizes = np.array(structure.sizes)
    row = int(np.flatnonzero(sizes[np.array(structure.row_slots)[structure.row_slot]] == 1)[0])
    col = int(np.flatnonzero(sizes[np.array(structure.col_slots)[structure.col_slot]] == 1)[0])
    rows = [i for i in range(len(w)) if i != row]
    cols = [j for j in range(len(w)) if j != col]
    block = w[np.ix_(rows, cols)]
    diagonal = block[np.arange(len(rows)), np.argmax(np.abs(block - np.median(block)), axis=1)]
    off = np.median(block)
    return np.array([w[row, col], w[row, cols[0]], w[rows[0], col], diagonal[0], off])


def _plot(ks, series, basis):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for axis, names in zip(axes, (["k F"], ["smallest eigenvalue"],
                                  [n for n in series if "(" in n]), strict=True):  # fmt: skip
        for name in names:
            coefficients, *_ = np.linalg.lstsq(basis, series[name], rcond=None)
            axis.plot(ks, series[name], ".", label=name)
            axis.plot(ks, basis @ coefficients, "-", color="grey", lw=0.8)
        axis.set_xlabel("k")
        axis.legend(fontsize=7)
    figure.suptitle("Delta(S_1 x S_k-1) family: measured (dots) and 1/sqrt(k) fits (lines)")
    figure.tight_layout()
    figure.savefig(OUT / "family_1_k-1.png", dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--table1", required=True)
    parser.add_argument("--k50", required=True)
    parser.add_argument("--critical", required=True)
    parser.add_argument("--family", required=True)
    args = parser.parse_args()
    text = ["Written by `python benchmarks/symmetry.py` (2-core CPU).", "",
            "## Symmetry-adapted spectra against the dense Hessian", "",
            *spectra_against_dense(args.table1), "", *lanczos_at_50(args.k50), "",
            "## Critical points in fixed-point spaces beside gradient descent", "",
            *beside_descent(args.critical, args.table1), "",
            "## The Delta(S_1 x S_k-1) family", "", *family(args.family), "",
            "![family](generated/family_1_k-1.png)", ""]  # fmt: skip
    (OUT / "symmetry.md").write_text(stamp("benchmarks/symmetry.py") + "\n" + "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
