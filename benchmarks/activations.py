"""ReLU, erf and tanh side by side on Safran & Shamir's protocol:
`python benchmarks/activations.py`.

Runs `configs/safran_shamir_2018.toml` (n = k, k = 6..20, 1,000 runs per cell) with
`problem.activation` = relu and = erf, each in a fresh process one after the other, and
tanh (a quadrature kernel, about a thousand times the cost of a closed form per step) on
the k and seeds given by `--tanh-k` and `--tanh-seeds`. Writes
`docs/generated/activations.md`: each sweep's wall time, and per k the spurious rate with
its 95% interval and the most common spurious symmetry types.
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
from sweep.reports import format_summary

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "safran_shamir_2018.toml"


def run(activation: str, extra: list[str], out: Path) -> float:
    """One sweep in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "sweep", "run", str(CONFIG), "--set",
               f"problem.activation={activation}", *extra, "--out", str(out), "--fresh",
               "--no-progress"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "activations"))
    parser.add_argument("--k", default="6..20", help="k of the relu and erf sweeps")
    parser.add_argument("--tanh-k", default="6..8")
    parser.add_argument("--tanh-seeds", default="200")
    args = parser.parse_args()
    plan = {
        "relu": ["--k", args.k],
        "erf": ["--k", args.k],
        "tanh": ["--k", args.tanh_k, "--seeds", args.tanh_seeds],
    }
    lines = [
        f"Measured {datetime.date.today()} by `benchmarks/activations.py` on {os.cpu_count()}"
        f" cores ({platform.machine()}): `python -m sweep run configs/safran_shamir_2018.toml"
        " --set problem.activation=NAME` with the arguments shown, one sweep after the other.",
        "",
        "| activation | arguments | runs | wall time |",
        "|---|---|---|---|",
    ]
    tables = []
    for activation, extra in plan.items():
        folder = Path(args.out) / activation
        seconds = run(activation, extra, folder)
        runs = sweep.load(folder)
        lines.append(f"| {activation} | `{' '.join(extra)}` | {len(runs):,} | {seconds:.0f} s |")
        print(lines[-1], flush=True)
        tables += ["", f"### {activation}", "", format_summary(sweep.summary(runs))]
    text = "\n".join([stamp("benchmarks/activations.py"), *lines, *tables, ""])
    out = ROOT / "docs" / "generated" / "activations.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
