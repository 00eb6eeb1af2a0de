"""Summary tables of a sweep: rates with binomial confidence intervals."""

import math

import numpy as np
import pandas as pd

from .analysis import STATUSES


def wilson_interval(successes, trials, z=1.959963984540054):
    """Wilson score interval for a binomial proportion (default 95%), as (low, high)."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summary(frame):
    """One row per (k, n): counts per status, % spurious with its 95% Wilson interval,
    mean objective and mean smallest Hessian eigenvalue over the spurious runs, and the
    median number of steps."""
    table = []
    for (k, n), group in frame.groupby(["k", "n"], sort=True):
        runs = len(group)
        spurious = group[group["status"] == "spurious"]
        low, high = wilson_interval(len(spurious), runs)
        row = {"k": int(k), "n": int(n), "runs": runs}
        row.update({status: int((group["status"] == status).sum()) for status in STATUSES})
        row.update(
            {
                "spurious_%": 100 * len(spurious) / runs,
                "ci95_low_%": 100 * low,
                "ci95_high_%": 100 * high,
                "spurious_mean_loss": spurious["loss"].mean() if len(spurious) else np.nan,
                "spurious_mean_min_eig": spurious["min_eig"].mean() if len(spurious) else np.nan,
                "median_steps": float(group["steps"].median()),
            }
        )
        table.append(row)
    return pd.DataFrame(table)


def format_summary(table):
    """The summary as an aligned text table for the terminal (and Markdown readers)."""
    header = (
        "|  k |  n | runs | global | spurious | saddle | not conv. | diverged "
        "| % spurious [95% CI]    | mean loss (sp.) | mean min eig (sp.) | median steps |"
    )
    lines = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for row in table.to_dict("records"):
        interval = f"{row['spurious_%']:5.1f} [{row['ci95_low_%']:4.1f}, {row['ci95_high_%']:4.1f}]"
        lines.append(
            f"| {row['k']:2d} | {row['n']:2d} | {row['runs']:4d} | {row['global']:6d} "
            f"| {row['spurious']:8d} | {row['saddle']:6d} | {row['not_converged']:9d} "
            f"| {row['diverged']:8d} | {interval:<22} | {row['spurious_mean_loss']:15.4g} "
            f"| {row['spurious_mean_min_eig']:18.4g} | {row['median_steps']:12.0f} |"
        )
    return "\n".join(lines)
