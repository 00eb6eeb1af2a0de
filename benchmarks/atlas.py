"""The atlas pages (`docs/generated/atlas.md`, `atlas_rates.png`, `atlas_losses.png`, or
NAME.md with `--name`): the minima `sweep critical`
found and proved at n = k and n = k + 1, their families and fates, and the sweeps that
measure how often gradient descent reaches them.

    python benchmarks/atlas.py --critical DIR [--critical DIR ...] [--sweep DIR ...]
                               [--name PAGE]

- Per k and n, the minima of the critical tables under DIR: how many, how many proved,
  the spurious ones with their family and their fate with one neuron more
  (computed here, by the same `extra_neuron.fate`, for tables made without it), and what
  splitting one of its neurons does (`split_neuron.fate`, likewise).
- Per sweep cell: runs, spurious runs with a 95% Wilson interval, and every spurious
  point the runs reached joined to the critical table of its k and n (`critical.reached`):
  how many lie outside it.
- A plot of the spurious rate against k for each n - k.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import stamp  # noqa: E402

import sweep
from sweep.commands import critical
from sweep.confidence import wilson_interval
from sweep.proofs import extra_neuron, prove_point, split_neuron
from sweep.symmetry import families
from sweep.symmetry.structure import detect

OUT = Path(__file__).resolve().parent.parent / "docs" / "generated"


def _table(frame: pd.DataFrame) -> list[str]:
    return ["```", frame.to_string(index=False, float_format=lambda x: f"{x:.7g}"), "```"]


def minima(table: pd.DataFrame) -> list[str]:
    """Per (k, n): the minima found, proved, and the spurious ones listed."""
    lines = []
    counts = table.groupby(["k", "n"]).apply(lambda cell: pd.Series({
        "points": len(cell), "minima": int((cell["kind"] == "minimum").sum()),
        "proved": int(((cell["kind"] == "minimum") & (cell["certified"] == "proved")).sum()),
    }), include_groups=False).reset_index()  # fmt: skip
    lines += ["Critical points per k and n (minima proved where `certified` says so):", "",
              *_table(counts), ""]  # fmt: skip
    spurious = table[(table["kind"] == "minimum") & (table["loss"] > 1e-12)].copy()
    if "fate_n_plus_1" in spurious:
        spurious["fate_n_plus_1"] = [_fate(row) for row in spurious.itertuples()]
    spurious["fate_split"] = [_split(row) for row in spurious.itertuples()]
    shown = ["k", "n", "isotropy", "loss", "min_eig", "certified", "family"]
    if "fate_n_plus_1" in spurious:
        shown.append("fate_n_plus_1")
    shown.append("fate_split")
    for extra, own in spurious.groupby(spurious["n"] - spurious["k"]):
        width = f"k + {extra}" if extra else "k"
        if "fate_n_plus_1" in own:
            lines += [f"Fates at n + 1 of the spurious minima of n = {width}, the new neuron "
                      "at zero (proved):", "", *_counted(own["fate_n_plus_1"]), ""]  # fmt: skip
        lines += ["... and one of their neurons split in two, λ w and (1 − λ) w, for every "
                  "0 < λ < 1 (proved):", "", *_counted(own["fate_split"]), ""]  # fmt: skip
    if len(spurious) > LISTED:
        lines += [f"{len(spurious)} spurious minima: too many to list here (the tables hold "
                  "them).", ""]  # fmt: skip
    else:
        lines += ["The spurious minima:", "", *_table(spurious[shown]), ""]
    return lines


LISTED = 600  # spurious minima listed on a page at most


def _counted(fates: pd.Series) -> list[str]:
    return [f"- {fate or 'not proved a minimum, no fate'}: {count}"
            for fate, count in fates.value_counts().items()]  # fmt: skip


def _proved_again(row):
    """(structure, certificate) of a table's proved minimum of n = k, proved once here for
    both fates of a table made without their columns; None where it fails now."""
    key = (row.k, np.asarray(row.weights).tobytes())
    if key not in _PROOFS:
        weights = np.reshape(row.weights, (row.n, row.d))
        structure = detect(weights, row.k)
        certificate = prove_point(weights, row.k, structure, 1e-8)
        proved = certificate.proved and certificate.negative == 0
        _PROOFS[key] = (structure, certificate) if proved else None
    return _PROOFS[key]


_PROOFS: dict = {}


def _fate(row) -> str:
    """The table's fate, or for a table made without the column, the same computation
    (`extra_neuron.fate` on the point's proof) done here."""
    if isinstance(row.fate_n_plus_1, str) or row.n != row.k or row.certified != "proved":
        return row.fate_n_plus_1 if isinstance(row.fate_n_plus_1, str) else ""
    found = _proved_again(row)
    return extra_neuron.fate(found[1], row.k, row.loss)[0] if found else "not proved again"


def _split(row) -> str:
    """The table's split fate, or the same proof (`split_neuron.fate`) for a table of
    n = k made without the column."""
    if isinstance(getattr(row, "fate_split", None), str) and row.fate_split:
        return row.fate_split
    if row.n != row.k or row.certified != "proved":
        return ""
    found = _proved_again(row)
    if not found:
        return "not proved again"
    structure, certificate = found
    orbits = split_neuron.orbits(structure.row_slot)
    return split_neuron.fate(certificate, row.k, row.loss, orbits)[0]


def family_counts(table: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """How many families each range of k holds, and how many are minima somewhere."""
    lines = []
    for n_minus_k, cells in table.assign(extra=table["n"] - table["k"]).groupby("extra"):
        mine = summary[summary["family"].isin(set(cells["family"].dropna()))]
        ks = sorted(set(cells["k"]))
        lines.append(f"- n = k{f' + {n_minus_k}' if n_minus_k else ''}, k = "
                     f"{', '.join(map(str, ks)) if len(ks) < 4 else f'{ks[0]}..{ks[-1]}'}: "
                     f"{len(mine)} families, {int((mine['minimum_at'] != '').sum())} of them "
                     "minima at some k")  # fmt: skip
    return lines


ZERO = 1e-10  # a run's loss this small is the global minimum's, F = 0


def rates(folders: list[str], table: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """Per sweep cell: spurious rate with its interval, and the spurious points reached
    that the critical table does not hold."""
    rows = []
    for folder in folders:
        runs = sweep.load(folder)
        catalogue = sweep.load(folder, table="catalogue")
        for (k, n), cell in runs.groupby(["k", "n"]):
            spurious = int((cell["status"] == "spurious").sum())
            stalled = cell[cell["status"] == "not_converged"]
            low, high = wilson_interval(spurious, len(cell))
            mine = table[(table["k"] == k) & (table["n"] == n)]
            reached = catalogue[(catalogue["k"] == k) & (catalogue["n"] == n)
                                & (catalogue["status"] == "spurious")]  # fmt: skip
            outside = np.nan
            if len(mine):
                joined = critical.reached(mine, reached)
                outside = int((joined["searched"] == "").sum())
            rows.append({"sweep": cell["sweep"].iloc[0], "k": k, "n": n, "runs": len(cell),
                         "spurious": spurious,
                         "rate": spurious / len(cell), "low": low, "high": high,
                         "not_converged": len(stalled),
                         "of_them_at_zero": int((stalled["loss"].abs() < ZERO).sum()),
                         "points_reached": len(reached), "outside_atlas": outside})  # fmt: skip
    frame = pd.DataFrame(rows)
    lines = ["Spurious rates (95% Wilson intervals), runs stopped by the step limit before "
             f"|grad F| <= 1e-12 (`not_converged`; `of_them_at_zero`: with |F| < {ZERO:g}) and "
             "the spurious points reached that the critical tables lack (`outside_atlas`; "
             "NaN: no table at that k, n):", "",
             *_table(frame), ""]  # fmt: skip
    return lines, frame


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _followed(table: pd.DataFrame) -> bool:
    """Whether some family is in the tables at two consecutive k (else F against k would
    only join points of tables far apart)."""
    steps = table.sort_values("k").groupby(["family", table["n"] - table["k"]])["k"].diff()
    return bool((steps == 1).any())


def plot_losses(table: pd.DataFrame, summary: pd.DataFrame, name: str) -> None:
    """F against k of every family that is a spurious minimum at some k, per n - k: a dot
    where the point is a minimum, a thin line along the family between consecutive k."""
    plt = _pyplot()
    chosen = set(summary[(summary["minimum_at"] != "") & (summary["loss_last"] > 1e-12)]["family"])
    extras = sorted(set(table["n"] - table["k"]))
    figure, axes = plt.subplots(1, len(extras), figsize=(7 * len(extras), 4.5), squeeze=False)
    for axis, extra in zip(axes[0], extras, strict=True):
        cells = table[(table["n"] - table["k"] == extra) & table["family"].isin(chosen)]
        for _, rows in cells.sort_values("k").groupby("family"):
            color = axis.plot([], [])[0].get_color()
            # a line only between consecutive k: tables at k = 50 and 100 alone say nothing
            # of the family in between
            for _, run in rows.groupby((rows["k"].diff() != 1).cumsum()):
                axis.plot(run["k"], run["loss"], lw=0.6, color=color)
            minima = rows[rows["index"] == 0]
            axis.plot(minima["k"], minima["loss"], "o", ms=2.5, color=color)
        axis.set_xlabel("k")
        axis.set_ylabel("F")
        axis.set_title(f"n = k + {extra}" if extra else "n = k")
    figure.tight_layout()
    figure.savefig(OUT / f"{name}_losses.png", dpi=110)


def plot(frame: pd.DataFrame, name: str) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for extra, cells in frame.assign(extra=frame["n"] - frame["k"]).groupby("extra"):
        cells = cells.sort_values("k")
        axis.errorbar(cells["k"], cells["rate"], yerr=[cells["rate"] - cells["low"],
                      cells["high"] - cells["rate"]], marker="o", ms=3, capsize=2,
                      label=f"n = k + {extra}" if extra else "n = k")  # fmt: skip
    axis.set_xlabel("k")
    axis.set_ylabel("spurious rate")
    axis.legend()
    figure.tight_layout()
    figure.savefig(OUT / f"{name}_rates.png", dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--critical", action="append", required=True)
    parser.add_argument("--sweep", action="append", default=[])
    parser.add_argument("--name", default="atlas", help="the page: docs/generated/NAME.md")
    args = parser.parse_args()
    table = pd.concat(
        [sweep.load(folder, table="critical") for folder in args.critical], ignore_index=True
    )
    table = table[table["activation"] == "relu"]
    text = ["Written by `python benchmarks/atlas.py` (2-core CPU).", "",
            "## Minima found and proved", "", *minima(table)]  # fmt: skip
    summary = families.summary(table)
    spurious = summary[(summary["minimum_at"] != "") & (summary["loss_last"] > 1e-12)]
    text += ["## Families", "", *family_counts(table, summary), ""]
    if _followed(table):
        plot_losses(table, summary, args.name)
        text += ["F against k along the families that are spurious minima at some k (dots: "
                 "where the point is a minimum):", "",
                 f"![losses](generated/{args.name}_losses.png)", ""]  # fmt: skip
    text += ["Families that are spurious minima at some k:", "",
             *_table(spurious[["family", "first_k", "last_k", "loss_first", "loss_last",
                               "starts", "ends", "index"]]), ""]  # fmt: skip
    if args.sweep:
        lines, frame = rates(args.sweep, table)
        text += ["## Sweeps beside the atlas", "", *lines,
                 f"![spurious rates](generated/{args.name}_rates.png)", ""]  # fmt: skip
        plot(frame, args.name)
    (OUT / f"{args.name}.md").write_text(stamp("benchmarks/atlas.py") + "\n" + "\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
