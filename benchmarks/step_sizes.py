"""The spurious rate against the step size, with gradient flow as the limit:
`python benchmarks/step_sizes.py [--k 6..14] [--seeds 300]`.

Runs `configs/safran_shamir_2018.toml` with gradient descent at step c/k for every c of
`--steps` (one sweep, the steps a `[grid]` axis) and with gradient flow
(`optimizer.kind = "flow"`), from the same initial points (a run's start depends only on
the seed, the cell shape and the init), and writes `docs/generated/step_sizes.md`: per
k, the % spurious at each step and under the flow, and how many runs end at another
point than the flow's (status, or canonical end point further than `--tol` apart).
`--flow DIR --gd DIR` reads two finished sweeps instead. `--compare C` instead compares
one finished GD sweep at step C/k with one flow sweep run by run and lists every
difference (the check of the flow against small-step gradient descent).
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import stamp  # noqa: E402

import sweep
from sweep.symmetry.canonical import canonical_form

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "safran_shamir_2018.toml"
AXIS = "optimizer.step_size"


def run(out: Path, extra: list[str]) -> float:
    """One sweep in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "sweep", "run", str(CONFIG), *extra, "--out", str(out),
               "--no-progress"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def end_gap(a: pd.Series, b: pd.Series) -> float:
    """Largest entry of the difference of two end points in canonical form (the point up to
    the loss's permutations of neurons and coordinates)."""
    shape = (int(a["n"]), int(a["d"]))
    left = canonical_form(np.reshape(a["weights"], shape))
    right = canonical_form(np.reshape(b["weights"], shape))
    return float(np.max(np.abs(left - right)))


def differences(gd: pd.DataFrame, flow: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Runs (same k, n, run) where gradient descent ends elsewhere than the flow."""
    keys = ["k", "n", "run"]
    both = gd.merge(flow, on=keys, suffixes=("_gd", "_flow"))
    rows = []
    for row in both.to_dict("records"):
        a = {"n": row["n"], "d": row["d_gd"], "weights": row["weights_gd"]}
        b = {"n": row["n"], "d": row["d_flow"], "weights": row["weights_flow"]}
        gap = end_gap(a, b)
        if row["status_gd"] != row["status_flow"] or gap > tol:
            rows.append({**{key: row[key] for key in keys}, "status_gd": row["status_gd"],
                         "status_flow": row["status_flow"], "loss_gd": row["loss_gd"],
                         "loss_flow": row["loss_flow"], "gap": gap})  # fmt: skip
    return pd.DataFrame(rows, columns=[*keys, "status_gd", "status_flow", "loss_gd",
                                       "loss_flow", "gap"])  # fmt: skip


def _markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.6g}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")  # fmt: skip
    return "\n".join(lines)


def table(gd: pd.DataFrame, flow: pd.DataFrame, steps: list[str], tol: float) -> str:
    header = "| k | runs |" + "".join(f" GD {s}: % spurious (moved) |" for s in steps)
    header += " flow: % spurious |"
    lines = [header, "|---|---|" + "---|" * (len(steps) + 1)]
    for k, cell in flow[flow["k"].isin(gd["k"])].groupby("k"):
        row = f"| {k} | {len(cell)} |"
        for step in steps:
            at = gd[(gd["k"] == k) & (gd[AXIS] == step)]
            moved = len(differences(at, cell, tol))
            row += f" {100 * at['status'].eq('spurious').mean():.1f} ({moved}) |"
        lines.append(row + f" {100 * cell['status'].eq('spurious').mean():.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="6..14")
    parser.add_argument("--seeds", default="300")
    parser.add_argument("--steps", default="0.5/k,1/k,2/k,5/k")
    parser.add_argument("--tol", type=float, default=1e-6, help="end points this close agree")
    parser.add_argument("--out", default=str(ROOT / "results" / "step_sizes"))
    parser.add_argument("--gd", help="a finished GD sweep (with the steps as a [grid] axis)")
    parser.add_argument("--flow", help="a finished gradient flow sweep")
    parser.add_argument("--compare", help="C: list the runs where GD at C/k and the flow differ")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "generated"))
    args = parser.parse_args()
    if args.compare:
        gd, flow = sweep.load(args.gd), sweep.load(args.flow)
        if AXIS in gd:
            gd = gd[gd[AXIS] == f"{args.compare}/k"]
        found = differences(gd, flow, args.tol)
        agree = 1 - len(found) / len(flow)
        text = [
            f"Measured {datetime.date.today()}: `python benchmarks/step_sizes.py --compare "
            f"{args.compare} --gd GD --flow FLOW`, k = {', '.join(map(str, sorted(set(flow.k))))}"
            f", {len(flow)} runs.",
            "",
            f"{100 * agree:.1f}% of runs end where the flow ends (same status, canonical end "
            f"points within {args.tol:g}); {100 * flow['status'].eq('spurious').mean():.1f}% "
            f"spurious under the flow, {100 * gd['status'].eq('spurious').mean():.1f}% under "
            f"gradient descent at step {args.compare}/k.",
            "",
            _markdown(found) if len(found) else "No run differs.",
        ]
        (Path(args.docs) / "flow_vs_gd.md").write_text(
            stamp("benchmarks/step_sizes.py") + "\n" + "\n".join(text) + "\n"
        )
        print("\n".join(text))
        return
    steps = args.steps.split(",")
    seconds = {}
    gd_path = Path(args.gd or Path(args.out) / "gd")
    flow_path = Path(args.flow or Path(args.out) / "flow")
    common = ["--k", args.k, "--seeds", args.seeds]
    if not args.gd:
        seconds["GD, every step"] = run(gd_path, [*common, "--grid", f"{AXIS}={args.steps}"])
    if not args.flow:
        seconds["flow"] = run(flow_path, [*common, "--set", "optimizer.kind=flow"])
    gd, flow = sweep.load(gd_path), sweep.load(flow_path)
    how = (f"--k {args.k} --seeds {args.seeds}" if not (args.gd or args.flow)
           else "--gd GD_DIR --flow FLOW_DIR")  # fmt: skip
    text = [
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores "
        f"(`python benchmarks/step_sizes.py {how}`, gradient descent from one sweep with "
        f"the steps as a `[grid]` axis, {gd.groupby(['k', AXIS]).size().max()} runs per cell).",
        "",
        table(gd, flow, steps, args.tol),
        "",
        "(moved): runs that end elsewhere than the flow from the same initial point (another "
        f"status, or canonical end points more than {args.tol:g} apart).",
    ]
    if seconds:
        text += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + "."]
    Path(args.docs).mkdir(parents=True, exist_ok=True)
    (Path(args.docs) / "step_sizes.md").write_text(
        stamp("benchmarks/step_sizes.py") + "\n" + "\n".join(text) + "\n"
    )
    print("\n".join(text))


if __name__ == "__main__":
    main()
