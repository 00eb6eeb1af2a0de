"""Published values a sweep is set beside: Safran & Shamir's (ICML 2018) Table 1, shipped
with the package, used where the sweep follows the paper's protocol, for the cells (k, n)
the paper reports."""

from importlib import resources
from pathlib import Path

import pandas as pd

from ..config import Config
from ..config.protocols import SAFRAN_SHAMIR_2018, departures

REFERENCE = "safran_shamir_2018.csv"


def reference_path() -> Path:
    """The shipped CSV of Safran & Shamir's Table 1 (k, n, spurious_pct, ...)."""
    return Path(str(resources.files(__package__) / "references" / REFERENCE))


def published_for(
    config: Config | None, cells: pd.DataFrame, reference: str | Path | None = None
) -> tuple[pd.DataFrame | None, str]:
    """(the published rows for the sweep's cells, or None; a line saying why none apply).

    `reference`: a user's CSV (used as given, for the sweep's cells); default: the paper's
    table, where the sweep follows its protocol (`config/protocols.py`)."""
    if reference is None:
        if config is None:
            return None, "published values: none apply (a folder without its config)"
        gaps = departures(config, SAFRAN_SHAMIR_2018)
        if gaps:
            return None, ("published values (Safran & Shamir 2018): none apply, the sweep "
                          "departs from their protocol: " + "; ".join(gaps))  # fmt: skip
        reference = reference_path()
    table = pd.read_csv(reference)
    rows = table.merge(cells[["k", "n"]].drop_duplicates(), on=["k", "n"], how="inner")
    if not len(rows):
        reported = ", ".join(f"(k={k}, n={n})" for k, n in table[["k", "n"]].head(3).to_numpy())
        return None, f"published values: none for this sweep's cells (they report {reported}, ...)"
    return rows, ""
