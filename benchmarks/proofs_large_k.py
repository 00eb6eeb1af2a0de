"""Proof cost at large k (`docs/generated/proofs_large_k.md`).

    python benchmarks/proofs_large_k.py results/k50 results/k100

Each folder is a finished sweep of the closed form (e.g. `configs/safran_2021.toml --k 50
--seeds 100`); `certify` runs on one core (one worker process), and the table lists per
folder the distinct points, how many were proved and by which route, the runs certified,
the slowest and median proof and the peak memory of the one worker.
"""

import concurrent.futures
import multiprocessing
import resource
import sys
import time
from pathlib import Path

from provenance import stamp  # noqa: E402

import sweep

OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs_large_k.md"


def _certify(folder: str) -> tuple:
    start = time.perf_counter()
    table = sweep.certify(folder, workers=1)
    wall = time.perf_counter() - start
    runs = sweep.load(folder, columns=["status"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return table, int(runs["certified"].sum()), len(runs), wall, peak


def main(folders: list[str]) -> None:
    lines = ["| k | runs | distinct points | proved | runs certified | slowest proof | "
             "median proof | certify wall | peak memory (process) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    context = multiprocessing.get_context("spawn")
    for folder in folders:
        # A fresh process per folder, so that its peak memory is its own.
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            table, certified, runs, wall, peak = pool.submit(_certify, folder).result()
        k = ", ".join(str(k) for k in sorted(table["k"].unique()))
        proved = int((table["certified"] == "proved").sum())
        lines.append(
            f"| {k} | {runs} | {len(table)} | {proved} | {certified} / {runs} | "
            f"{table['seconds'].max():.2f} s | {table['seconds'].median():.2f} s | "
            f"{wall:.1f} s | {peak:.0f} MB |"
        )
    text = "\n".join([
        "Written by `python benchmarks/proofs_large_k.py` (one core, 2-core CPU). The peak "
        "memory is the certifying process's, JAX and the sweep's tables included.", "",
        *lines, ""])  # fmt: skip
    OUT.write_text(stamp("benchmarks/proofs_large_k.py") + "\n" + text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
