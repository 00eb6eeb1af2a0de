"""The catalogue of distinct minima: converged points deduplicated up to the symmetries
of the loss (row and column permutations for V = I), with how often each was reached."""

import numpy as np
import pandas as pd

from ..config.grid import axis_columns
from ..limits import RUN_END_SYMMETRY, SAME_POINT
from ..outcomes import Status
from ..symmetry import isotypic
from ..symmetry.canonical import canonical_form, same_point

# Statuses whose distinct points are catalogued one by one; the global minima get one row
# per cell (for n > k they form a continuum).
CATALOGUED = (Status.SPURIOUS, Status.SADDLE)
COLUMNS = [
    "sweep", "k", "n", "d", "point", "status", "symmetry", "loss", "min_eig",
    "multiplicity", "example_run", "weights", "eigenvalues", "min_eig_multiplicity",
    "min_eig_component",
]  # fmt: skip

# The runs columns `catalogue` reads.
CATALOGUE_INPUT = ["sweep", "k", "n", "d", "run", "status", "symmetry", "loss", "min_eig",
                   "weights"]  # fmt: skip


def catalogue(
    runs: pd.DataFrame,
    statuses: tuple[str, ...] = CATALOGUED,
    tol: float = SAME_POINT,
    spectra: bool = True,
) -> pd.DataFrame:
    """One row per distinct point of the given statuses, per cell (k, n, d and the `[grid]`
    axes), and one row for the global minima of each cell that reached them.

    Args:
      runs: a runs DataFrame (the results table) of a problem whose loss is invariant
        under permutations of neurons and of coordinates (the closed form).
      statuses: which points to catalogue one by one.
      tol: two points are one when their canonical forms agree to this in every entry
        (`symmetry.canonical.same_point`).
      spectra: add each point's symmetry-adapted spectrum (ReLU loss only): the number of
        distinct Hessian eigenvalues (the blocks' total size), the smallest one's
        multiplicity and its isotypic component (`symmetry/isotypic.py`); null for a
        point without a symmetry group.

    Returns:
      DataFrame with k, n, d, point (its number within the cell: spurious points first, then
      saddles, then the global row, each most frequent first), status, symmetry, loss,
      min_eig, multiplicity, example_run and the canonical weights; then the axis columns.
    """
    rows = []
    axes = axis_columns(runs.columns)
    for key, cell in runs.groupby(["k", "n", "d", *axes], sort=True):
        k, n, d = key[:3]
        found = []  # [status, canonical weights, first row, multiplicity]
        for status in statuses:
            distinct = []
            for row in cell[cell["status"] == status].sort_values("run").itertuples(index=False):
                canonical = canonical_form(np.reshape(row.weights, (n, d)))
                for entry in distinct:
                    if same_point(entry[1], canonical, tol):
                        entry[3] += 1
                        break
                else:
                    distinct.append([status, canonical, row, 1])
            found += sorted(distinct, key=lambda entry: (-entry[3], entry[2].loss))
        best = cell[cell["status"] == Status.GLOBAL].sort_values("run")
        if len(best):
            row = next(best.itertuples(index=False))
            canonical = canonical_form(np.reshape(row.weights, (n, d)))
            found.append([Status.GLOBAL, canonical, row, len(best)])
        for index, (status, canonical, row, count) in enumerate(found):
            spectrum = isotypic.at_point(canonical, int(k), RUN_END_SYMMETRY) if spectra else None
            rows.append(
                {
                    "sweep": row.sweep, "k": int(k), "n": int(n), "d": int(d),
                    "point": index, "status": str(status), "symmetry": row.symmetry,
                    "loss": row.loss, "min_eig": row.min_eig, "multiplicity": count,
                    "example_run": int(row.run), "weights": canonical.ravel(),
                    **_spectrum_columns(spectrum),
                    **dict(zip(axes, key[3:], strict=True)),
                }
            )  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *axes])
    return frame.astype({"eigenvalues": "Int64", "min_eig_multiplicity": "Int64",
                         "min_eig_component": "string"})  # fmt: skip


def _spectrum_columns(found: tuple | None) -> dict:
    if found is None:
        return {"eigenvalues": None, "min_eig_multiplicity": None, "min_eig_component": None}
    *_, blocks = found
    _, multiplicity, component = isotypic.smallest(blocks)
    return {
        "eigenvalues": sum(len(b.eigenvalues) for b in blocks),
        "min_eig_multiplicity": multiplicity,
        "min_eig_component": component,
    }
