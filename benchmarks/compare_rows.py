"""Compare the rows of two sweep folders column by column: `python benchmarks/compare_rows.py A B`.

Prints, per column, how many rows differ (bit for bit for floats; end points also by their
largest absolute difference) and exits with status 1 if any row differs or is missing.
This is how a refactor shows that it changed no result, and how a numerical change lists
every difference it made.
"""

import argparse
import sys

import numpy as np
import pandas as pd

import sweep

KEY = ["k", "n", "run"]
# Columns that describe where and when a sweep ran, not what it computed.
CONTEXT = {"sweep"}


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise identity: floats bit for bit (NaN equals NaN), lists element-wise."""
    out = np.empty(len(a), bool)
    for i, (x, y) in enumerate(zip(a.to_numpy(), b.to_numpy(), strict=True)):
        if isinstance(x, (list, np.ndarray)) or isinstance(y, (list, np.ndarray)):
            x, y = np.asarray(x), np.asarray(y)
            out[i] = x.shape == y.shape and (
                x.dtype != float
                and bool(np.all(x == y))
                or x.dtype == float
                and x.tobytes() == y.tobytes()
            )
        elif isinstance(x, float) and isinstance(y, float):
            out[i] = np.float64(x).tobytes() == np.float64(y).tobytes()
        else:
            out[i] = (x is None and y is None) or (pd.isna(x) and pd.isna(y)) or x == y
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, int]:
    """Rows that differ per column (and "missing" for runs in only one of the two)."""
    merged = a.merge(b, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    found = {"missing": int((merged["_merge"] != "both").sum())}
    both = merged[merged["_merge"] == "both"]
    for column in sorted(set(a.columns) - set(KEY) - CONTEXT):
        if column in b.columns:
            found[column] = int((~_same(both[column + "_a"], both[column + "_b"])).sum())
    if "weights" in a.columns:
        gaps = [np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0)
                for x, y in zip(both["weights_a"], both["weights_b"], strict=True)]  # fmt: skip
        found["largest end point difference"] = float(max(gaps, default=0.0))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()
    a, b = sweep.load(args.a), sweep.load(args.b)
    found = compare(a, b)
    print(f"{len(a)} rows in {args.a}, {len(b)} rows in {args.b}")
    for column, count in found.items():
        print(f"  {column}: {count}")
    differ = {c: v for c, v in found.items() if v and c != "largest end point difference"}
    print("identical" if not differ else f"different: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
