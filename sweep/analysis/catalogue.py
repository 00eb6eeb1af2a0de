"""The catalogue of distinct minima: converged points deduplicated up to the symmetries
of the loss (row and column permutations for V = I), with how often each was reached."""

import numpy as np
import pandas as pd

from .symmetry import canonical_form


def catalogue(
    runs: pd.DataFrame, statuses: tuple[str, ...] = ("spurious",), tol: float = 1e-6
) -> pd.DataFrame:
    """One row per distinct point of the given statuses, per (k, n).

    Args:
      runs: a runs DataFrame (the results table) of a problem whose loss is invariant
        under permutations of neurons and of coordinates (the closed form).
      statuses: which points to catalogue (the global minima of n > k form a continuum).
      tol: Frobenius distance between canonical forms below which two points are one.

    Returns:
      DataFrame with k, n, d, minimum (index within the cell, most frequent first), status,
      symmetry, loss, min_eig, multiplicity, example_run and the canonical weights.
    """
    rows = []
    selected = runs[runs["status"].isin(statuses)]
    for (k, n, d), cell in selected.groupby(["k", "n", "d"], sort=True):
        found = []  # [canonical weights, first row, multiplicity]
        for row in cell.sort_values("run").itertuples(index=False):
            canonical = canonical_form(np.reshape(row.weights, (n, d)))
            for entry in found:
                if np.linalg.norm(entry[0] - canonical) < tol:
                    entry[2] += 1
                    break
            else:
                found.append([canonical, row, 1])
        found.sort(key=lambda entry: (-entry[2], entry[1].loss))
        for index, (canonical, row, count) in enumerate(found):
            rows.append(
                {
                    "sweep": row.sweep,
                    "k": int(k),
                    "n": int(n),
                    "d": int(d),
                    "minimum": index,
                    "status": row.status,
                    "symmetry": row.symmetry,
                    "loss": row.loss,
                    "min_eig": row.min_eig,
                    "multiplicity": count,
                    "example_run": int(row.run),
                    "weights": canonical.ravel(),
                }
            )
    columns = [
        "sweep",
        "k",
        "n",
        "d",
        "minimum",
        "status",
        "symmetry",
        "loss",
        "min_eig",
        "multiplicity",
        "example_run",
        "weights",
    ]
    return pd.DataFrame(rows, columns=columns)
