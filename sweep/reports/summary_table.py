"""Reports of a sweep: summary tables with binomial confidence intervals, and PNG plots."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .. import problems
from ..confidence import confidence_sequence, wilson_interval
from ..config import ConfigError
from ..config.grid import axis_columns, markdown_axes, markdown_head
from ..outcomes import STATUSES, Status
from ..results.layout import CATALOGUE, MANIFEST, REPORT
from ..results.runs_table import load, open_sweep
from . import plots
from .published import published_for

# The runs columns `summary` reads.
SUMMARY_INPUT = ["k", "n", "status", "loss", "min_eig", "steps", "symmetry"]


INTERVALS = {
    "wilson": ("95% Wilson interval", wilson_interval),
    "sequence": ("95% confidence sequence (beta-binomial mixture)", confidence_sequence),
}


def interval_of(config) -> str:
    """The interval a sweep's summary gives: a confidence sequence for an adaptive sweep
    (`sweep.target_halfwidth`), Wilson's otherwise."""
    return "sequence" if config.target_halfwidth > 0 else "wilson"


def summary(
    frame: pd.DataFrame, minima: pd.DataFrame | None = None, interval: str = "wilson"
) -> pd.DataFrame:
    """One row per cell (k, n and the `[grid]` axes): counts per status, % spurious with
    its 95% interval (`interval`: "wilson" for a fixed number of runs, "sequence" for an
    adaptive sweep, see `confidence.py`; named in the `interval` column), the mean
    objective and mean smallest Hessian eigenvalue over the spurious runs, the median
    number of steps, and (from a catalogue of minima, when given) the number of distinct
    spurious minima; the most common symmetry types of the spurious runs when recorded."""
    table = []
    axes = axis_columns(frame.columns)
    for key, group in frame.groupby(["k", "n", *axes], sort=True):
        k, n = key[:2]
        runs = len(group)
        spurious = group[group["status"] == Status.SPURIOUS]
        low, high = INTERVALS[interval][1](len(spurious), runs)
        row = {"k": int(k), "n": int(n), **dict(zip(axes, key[2:], strict=True)), "runs": runs}
        row.update({status: int((group["status"] == status).sum()) for status in STATUSES})
        row.update(
            {
                "spurious_%": 100 * len(spurious) / runs,
                "ci95_low_%": 100 * low,
                "ci95_high_%": 100 * high,
                "interval": INTERVALS[interval][0],
                "spurious_mean_loss": spurious["loss"].mean() if len(spurious) else np.nan,
                "spurious_mean_min_eig": spurious["min_eig"].mean() if len(spurious) else np.nan,
                "median_steps": float(group["steps"].median()),
            }
        )
        if minima is not None:
            same = (minima["k"] == k) & (minima["n"] == n)
            for axis, value in zip(axes, key[2:], strict=True):
                same &= minima[axis] == value
            cell = minima[same]
            row["distinct_minima"] = int((cell["status"] == Status.SPURIOUS).sum())
        if "symmetry" in spurious:
            counts = spurious["symmetry"].value_counts().head(3)
            row["types"] = ", ".join(f"{t} ({c})" for t, c in counts.items())
        table.append(row)
    return pd.DataFrame(table)


def linear_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """For 1-D students: one row per (sweep, n) with the % of runs that end essentially
    linear (95% Wilson interval), the median and 90th percentile of the largest bias
    movement, and the median final loss next to the piecewise linear regression error."""
    frame = frame[frame["essentially_linear"].notna()]
    table = []
    for (name, n), group in frame.groupby(["sweep", "n"], sort=True):
        linear = int(group["essentially_linear"].astype(bool).sum())
        low, high = wilson_interval(linear, len(group))
        table.append(
            {
                "sweep": name,
                "n": int(n),
                "runs": len(group),
                "linear_%": 100 * linear / len(group),
                "ci95_low_%": 100 * low,
                "ci95_high_%": 100 * high,
                "bias_movement_median": float(group["bias_movement"].median()),
                "bias_movement_p90": float(group["bias_movement"].quantile(0.9)),
                "loss_median": float(group["loss"].median()),
                "linear_loss": float(group["linear_loss"].iloc[0]),
            }
        )
    return pd.DataFrame(table)


def format_linear_summary(table: pd.DataFrame) -> str:
    lines = [
        "| sweep | n | runs | % essentially linear [95% CI] | bias movement median / p90 "
        "| median loss | linear fit loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.to_dict("records"):
        lines.append(
            f"| {row['sweep']} | {row['n']} | {row['runs']} "
            f"| {row['linear_%']:.1f} [{row['ci95_low_%']:.1f}, {row['ci95_high_%']:.1f}] "
            f"| {row['bias_movement_median']:.3g} / {row['bias_movement_p90']:.3g} "
            f"| {row['loss_median']:.4g} | {row['linear_loss']:.4g} |"
        )
    return "\n".join(lines)


def format_summary(table: pd.DataFrame) -> str:
    """The summary as an aligned text table for the terminal (and Markdown readers)."""
    axes = axis_columns(table.columns)
    header = (
        "|  k |  n |"
        + "".join(f" {axis} |" for axis in axes)
        + " runs | global | spurious | saddle | not conv. | diverged "
        "| % spurious [95% CI]    | mean loss (sp.) | mean min eig (sp.) | median steps |"
    )
    extra = [c for c in (Status.UNDECIDED.value,) if c in table.columns and table[c].any()]
    extra += [c for c in ("distinct_minima", "types") if c in table.columns]
    header += "".join(f" {c.replace('_', ' ')} |" for c in extra)
    sequential = "interval" in table and table["interval"].eq(INTERVALS["sequence"][0]).any()
    if sequential:  # the same width: "[95% CI]   " -> "[95% CS]   "
        header = header.replace("[95% CI]", "[95% CS]")
    lines = [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for row in table.to_dict("records"):
        interval = f"{row['spurious_%']:5.1f} [{row['ci95_low_%']:4.1f}, {row['ci95_high_%']:4.1f}]"
        lines.append(
            f"| {row['k']:2d} | {row['n']:2d} |"
            + "".join(f" {row[axis]!s:>{len(axis)}} |" for axis in axes)
            + f" {row['runs']:4d} | {row['global']:6d} "
            f"| {row['spurious']:8d} | {row['saddle']:6d} | {row['not_converged']:9d} "
            f"| {row['diverged']:8d} | {interval:<22} | {row['spurious_mean_loss']:15.4g} "
            f"| {row['spurious_mean_min_eig']:18.4g} | {row['median_steps']:12.0f} |"
            + "".join(f" {row[c]} |" for c in extra)
        )
    if sequential:
        lines.append(f"CS: {INTERVALS['sequence'][0]}, valid at every number of runs "
                     "(Howard, Ramdas, McAuliffe & Sekhon 2021)")  # fmt: skip
    return "\n".join(lines)


def write_report(
    path: str | Path, reference: str | Path | None = None, compare: tuple = ()
) -> tuple[str, list[Path]]:
    """Summarize a sweep folder: returns the Markdown table and writes PNGs to _report/.

    Args:
      path: the sweep's results folder.
      reference: optional CSV of published values (columns k, n, spurious_pct, ...).
      compare: other sweep folders to set beside it in the tables and plots of 1-D
        students (the same data trained with another init or optimizer).

    Returns:
      (text, list of PNG paths).
    """
    path = Path(path)
    frame = load(path)
    minima = None
    if (path / CATALOGUE).exists():
        try:
            minima = load(path, table="catalogue")
        except ConfigError as error:  # a damaged catalogue: report the runs without it
            print(error, file=sys.stderr)
    config = open_sweep(path)[1] if (path / MANIFEST).is_file() else None
    interval = interval_of(config) if config is not None else "wilson"
    table = summary(frame, minima, interval)
    catalogued = config is not None and problems.KINDS[config.problem.kind].catalogues(config)
    published, why_not = published_for(config, table, reference) if catalogued else (None, "")
    folder = path / REPORT
    folder.mkdir(exist_ok=True)
    pngs = [
        plots.spurious_objectives(frame, folder / "spurious_objectives.png"),
        plots.steps_to_converge(frame, folder / "steps_to_converge.png"),
    ]
    if (table["k"] > 0).any():  # a teacher width to plot against
        pngs.insert(0, plots.rate_vs_k(table, folder / "spurious_rate_vs_k.png", published,
                                         interval))  # fmt: skip
    text = format_summary(table)
    if published is not None:
        merged = table.merge(published, on=["k", "n"], how="inner")
        text += "\n\nAgainst the published values:\n" + format_comparison(merged)
    elif why_not:
        text += "\n\n" + why_not
    if "essentially_linear" in frame and frame["essentially_linear"].notna().any():
        both = pd.concat([frame, *(load(other) for other in compare)], ignore_index=True)
        linear = linear_summary(both)
        text += "\n\nEssentially linear runs (1-D students):\n" + format_linear_summary(linear)
        pngs.append(plots.linear_vs_width(linear, folder / "essentially_linear_vs_width.png"))
    if minima is not None and "certified" in minima.columns:
        text += "\n\n" + _certified_section(minima, frame, folder)
    (folder / "summary.md").write_text(text + "\n")
    return text, pngs


def format_comparison(merged: pd.DataFrame) -> str:
    """Measured vs published rate: is the published rate inside the measured 99% Wilson
    interval? (99%, not the 95% of the other tables: with a dozen cells compared at once,
    a 95% check would flag one of them by chance about half the time.) One row per cell,
    with its `[grid]` axis values."""
    axes = axis_columns(merged.columns)
    lines = markdown_head(axes, " % spurious | published | inside 99% interval |")
    for row in merged.to_dict("records"):
        low, high = wilson_interval(row["spurious"], row["runs"], z=2.5758293035489)
        inside = low <= row["spurious_pct"] / 100 <= high
        values = markdown_axes(row, axes)
        lines.append(
            f"| {row['k']:2d} | {row['n']:2d} |{values} {row['spurious_%']:10.1f} "
            f"| {row['spurious_pct']:9.1f} | {'yes' if inside else 'no':19s} |"
        )
    lines.append("(a 99% Wilson interval: with a dozen cells compared at once, a 95% check "
                 "would miss one by chance about half the time)")  # fmt: skip
    return "\n".join(lines)


def _certified_section(minima: pd.DataFrame, frame: pd.DataFrame, folder: Path) -> str:
    """Runs and distinct points proven per (k, n), and the table of proven minima (also
    written as Markdown and LaTeX for a paper)."""
    from .proofs_table import format_counts, format_latex, format_markdown, proven_minima

    keys = ["k", "n", *axis_columns(frame.columns), "run"]
    per_run = frame[keys].assign(certified=frame.get("certified", False))
    catalogued = per_run[frame["status"].isin(minima["status"].unique())]
    proven = proven_minima(minima)
    (folder / "certified_minima.md").write_text(format_markdown(proven) + "\n")
    (folder / "certified_minima.tex").write_text(format_latex(proven) + "\n")
    return (
        "Proofs (sweep certify):\n" + format_counts(minima, catalogued)
        + "\n\nProven minima:\n" + format_markdown(proven)
    )  # fmt: skip
