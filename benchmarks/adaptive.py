"""What adaptive sampling saves: `python benchmarks/adaptive.py [--k 6..25]`.

Runs `configs/safran_shamir_2018.toml` over `--k` with `sweep.target_halfwidth`
(`--halfwidth`, default 0.02), at most `--seeds` runs per cell in waves of `--wave`, and
writes `docs/generated/adaptive.md`: per cell the runs spent against the fixed `--seeds`,
the spurious rate and its 95% confidence sequence. `--from DIR` reads a finished sweep.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from provenance import stamp  # noqa: E402

import sweep
from sweep.confidence import confidence_sequence

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "safran_shamir_2018.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="6..25")
    parser.add_argument("--seeds", default="1000", help="the most runs per cell")
    parser.add_argument("--wave", default="100", help="runs per wave (the shard size)")
    parser.add_argument("--halfwidth", default="0.02")
    parser.add_argument("--out", default=str(ROOT / "results" / "adaptive"))
    parser.add_argument("--from", dest="folder", help="a finished adaptive sweep")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "generated"))
    args = parser.parse_args()
    folder, seconds = Path(args.folder or args.out), None
    if not args.folder:
        start = time.perf_counter()
        command = [sys.executable, "-m", "sweep", "run", str(CONFIG), "--k", args.k,
                   "--seeds", args.seeds, "--halfwidth", args.halfwidth, "--set",
                   f"sweep.shard_size={args.wave}", "--out", str(folder),
                   "--no-progress"]  # fmt: skip
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    runs = sweep.load(folder, columns=["status"])
    lines = [
        "| k | runs spent | % spurious [95% CS] | half-width |",
        "|---|---|---|---|",
    ]
    for k, cell in runs.groupby("k"):
        spurious = int(cell["status"].eq("spurious").sum())
        low, high = confidence_sequence(spurious, len(cell))
        lines.append(f"| {k} | {len(cell)} | {100 * spurious / len(cell):.1f} "
                     f"[{100 * low:.1f}, {100 * high:.1f}] | {(high - low) / 2:.3f} |")  # fmt: skip
    cells = runs["k"].nunique()
    text = [
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores: "
        f"`python benchmarks/adaptive.py --k {args.k} --seeds {args.seeds} --wave {args.wave} "
        f"--halfwidth {args.halfwidth}`.",
        "",
        *lines,
        "",
        f"{len(runs):,} runs in all, against {cells * int(args.seeds):,} for {args.seeds} "
        "runs per cell" + (f"; wall time {seconds:.0f} s." if seconds else "."),
    ]
    Path(args.docs).mkdir(parents=True, exist_ok=True)
    (Path(args.docs) / "adaptive.md").write_text(
        stamp("benchmarks/adaptive.py") + "\n" + "\n".join(text) + "\n"
    )
    print("\n".join(text))


if __name__ == "__main__":
    main()
