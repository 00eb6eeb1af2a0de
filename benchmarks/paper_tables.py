"""Safran & Shamir's Tables 1 and 2, measured: `python benchmarks/paper_tables.py`.

Runs `configs/safran_shamir_2018.toml` (Table 1: n = k = 6..20, 1,000 runs each) and the
same with `--k 8..19 --n k+1` (Table 2), each in a fresh process, and writes the tables
the docs show (`docs/generated/table1.md`, `table2.md`): the summary per cell next to the
published values, the wall time, and the machine. `--from DIR1 DIR2` reads two finished
sweeps instead of running them (no wall time then).
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from provenance import stamp  # noqa: E402

import sweep
from sweep.reports import format_summary
from sweep.reports.published import reference_path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "safran_shamir_2018.toml"
TABLES = {"table1": [], "table2": ["--k", "8..19", "--n", "k+1"]}


def run(name: str, extra: list[str], out: Path) -> float:
    """Train one table in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "sweep", "run", str(CONFIG), *extra, "--out", str(out),
               "--fresh", "--no-progress"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def published_rows(table: pd.DataFrame) -> str:
    """The published rates beside the measured ones, for the cells the paper lists."""
    reference = pd.read_csv(reference_path())
    merged = table.merge(reference, on=["k", "n"])
    if merged.empty:
        return ""
    lines = ["| k | n | % spurious, measured [95% CI] | published | mean loss, measured "
             "| published | mean smallest eigenvalue, measured | published |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in merged.to_dict("records"):
        lines.append(
            f"| {row['k']} | {row['n']} | {row['spurious_%']:.1f} "
            f"[{row['ci95_low_%']:.1f}, {row['ci95_high_%']:.1f}] | {row['spurious_pct']} "
            f"| {row['spurious_mean_loss_x']:.4f} | {row['spurious_mean_loss_y']} "
            f"| {row['spurious_mean_min_eig_x']:.4f} | {row['spurious_mean_min_eig_y']} |"
        )
    return "\n".join(lines)


def write(name: str, folder: Path, seconds: float | None, docs: Path) -> str:
    runs = sweep.load(folder)
    minima = sweep.load(folder, table="catalogue")
    table = sweep.summary(runs, minima)
    when = f"{seconds:.0f} s wall time" if seconds is not None else "wall time not measured"
    lines = [
        f"Measured {datetime.date.today()} by `benchmarks/paper_tables.py` on {os.cpu_count()}"
        f" cores ({platform.machine()}), {when}, {len(runs):,} runs.",
        "",
        format_summary(table),
    ]
    published = published_rows(table)
    if published:
        lines += ["", "Against the published values:", "", published]
    text = "\n".join(lines) + "\n"
    (docs / f"{name}.md").write_text(stamp("benchmarks/paper_tables.py") + "\n" + text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    parser.add_argument("--from", dest="folders", nargs=2, help="two finished sweeps")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "generated"))
    args = parser.parse_args()
    docs = Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    for index, (name, extra) in enumerate(TABLES.items()):
        if args.folders:
            folder, seconds = Path(args.folders[index]), None
        else:
            folder = Path(args.out) / name
            seconds = run(name, extra, folder)
        print(write(name, folder, seconds, docs))


if __name__ == "__main__":
    main()
