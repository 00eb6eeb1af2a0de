"""The independent check of exact outcomes on data (Wu, Simsek & Ged's own method).

For a sample of classified end points of finished sweeps (spurious minima and saddles),
try random perturbations of relative size 1e-4..1e-2 (`sweep/kinks/perturb.py`):

* a point reported as a minimum agrees when no perturbation lowers the loss by more than
  1e-12 (relative). Where another kink lies closer than 1e-4 the loss beyond it may fall
  without contradicting a local minimum, so minima are also checked with perturbations
  from 1e-10 up to half the distance to the nearest other kink (one hidden layer; 1e-4
  for deeper nets): a drop there contradicts the verdict;
* a reported saddle agrees when the check exhibits a descent: a random perturbation, or
  the verdict's own direction at one of those sizes, that lowers the loss by more than
  1e-12.

    python benchmarks/kink_check.py results/holzmuller_1d results/deep_students \\
        --sample 100 --trials 5000

Prints one row per sweep and status, and the disagreements, if any.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep import config as config_module  # noqa: E402
from sweep import problems, runtime  # noqa: E402
from sweep.kinks.neurons import Neurons  # noqa: E402
from sweep.kinks.perturb import perturb  # noqa: E402
from sweep.results import runs_table

DROP = 1e-12


def nearest_kink(net, theta, data) -> float:
    """One hidden layer: the smallest relative perturbation |delta| / |theta| that can
    bring a pair off its kink set onto a kink, min |z_ij| / (|x~_i| |theta|) over the
    pairs with |z_ij| > 1e-9 |w~_j| |x~_i|; beyond it the point's pieces change. NaN for
    deeper nets."""
    if net.depth != 2:
        return float("nan")
    nr = Neurons.of(net, theta, data)
    z, scale = np.abs(nr.z), nr.scale()
    off = z > 1e-9 * scale
    reach = np.linalg.norm(nr.x, axis=1)[:, None] * np.linalg.norm(theta)
    return float(np.min((z / reach)[off])) if off.any() else float("inf")


def check_sweep(folder: str, sample: int, trials: int, seed: int) -> list[dict]:
    _, config = runs_table.open_sweep(folder)
    cells = {(c.k, c.n): c for c in config_module.cells(config)}
    runs = runs_table.load(folder)
    runs = runs[runs["status"].isin(["spurious", "saddle"])]
    rng = np.random.default_rng(seed)
    picked = runs.iloc[rng.permutation(len(runs))[:sample]]
    found, problem_of = [], {}
    for row in picked.itertuples():
        key = (row.k, row.n)
        if key not in problem_of:
            problem_of[key] = problems.for_cell(config, cells[key])
        problem = problem_of[key]
        theta = np.asarray(row.weights, float)
        direction = None
        if row.status == "saddle":
            verdict = problem._verdict(theta)
            direction = None if verdict is None else verdict.direction
        result = perturb(problem.objective, theta, problem.data.train, trials=trials,
                         seed=seed, direction=direction)  # fmt: skip
        agree = result.drop <= DROP if row.status == "spurious" else result.drop > DROP
        nearest = nearest_kink(problem.objective, theta, problem.data.train)
        local = float("nan")
        if row.status == "spurious":
            # Within the nearest other kink the point's own pieces are all there is: a
            # drop there contradicts the verdict; beyond it the loss may fall anywhere.
            reach = 1e-4 if not np.isfinite(nearest) else min(1e-4, 0.5 * nearest)
            if reach > 1e-10:
                local = perturb(problem.objective, theta, problem.data.train, trials=trials,
                                sizes=(1e-10, reach), seed=seed).drop  # fmt: skip
        found.append(dict(sweep=Path(folder).name, k=row.k, n=row.n, run=row.run,
                          status=row.status, decided_by=row.decided_by, kinks=row.kinks,
                          drop=result.drop, size=result.size, agree=agree,
                          nearest_kink=nearest, local_drop=local))  # fmt: skip
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--sample", type=int, default=100, help="end points per sweep")
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runtime.prepare_process()
    rows = [r for folder in args.folders for r in check_sweep(folder, args.sample, args.trials,
                                                               args.seed)]  # fmt: skip
    print("| sweep | status | checked | agree (1e-4..1e-2) | largest drop | agree inside "
          "the nearest other kink | largest drop there |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    keys = sorted({(r["sweep"], r["status"]) for r in rows})
    for sweep, status in keys:
        group = [r for r in rows if (r["sweep"], r["status"]) == (sweep, status)]
        local = [r["local_drop"] for r in group if np.isfinite(r["local_drop"])]
        inside = (f"{sum(d <= DROP for d in local)} of {len(local)} | {max(local):.3g}"
                  if local else "- | -")  # fmt: skip
        print(f"| {sweep} | {status} | {len(group)} | {sum(r['agree'] for r in group)} "
              f"| {max(r['drop'] for r in group):.3g} | {inside} |")  # fmt: skip
    bad = [r for r in rows if not r["agree"]]
    contradicted = [r for r in rows if r["local_drop"] > DROP]
    for r in bad:
        print(
            f"disagrees: {r['sweep']} k={r['k']} n={r['n']} run {r['run']}: {r['status']} "
            f"(decided_by {r['decided_by']}, {r['kinks']} kink pairs), relative drop "
            f"{r['drop']:.3g} at relative size {r['size']:.3g}; nearest other kink at "
            f"relative size {r['nearest_kink']:.3g}"
        )
    print(f"{len(rows)} points, {len(bad)} disagreements at 1e-4..1e-2, "
          f"{len(contradicted)} inside the nearest other kink")  # fmt: skip
    return 1 if contradicted or [r for r in bad if r["status"] == "saddle"] else 0


if __name__ == "__main__":
    sys.exit(main())
