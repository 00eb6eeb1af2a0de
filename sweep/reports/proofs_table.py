"""Tables of proven points: counts per cell, and the proven minima as Markdown and LaTeX
with their enclosures rounded outward."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd

from ..config.grid import axis_columns, markdown_axes, markdown_head
from ..outcomes import Status


def format_counts(table: pd.DataFrame, per_run: pd.DataFrame) -> str:
    """Per cell: distinct points proved / failed / skipped, runs certified, seconds."""
    axes = axis_columns(table.columns)
    columns = " points | proved | failed | skipped | runs certified | seconds | slowest |"
    lines = markdown_head(axes, columns)
    for key, cell in table.groupby(["k", "n", *axes], sort=True):
        counts = cell["certified"].value_counts()
        same = np.ones(len(per_run), bool)
        for column, value in zip(["k", "n", *axes], key, strict=True):
            same &= (per_run[column] == value).to_numpy()
        runs = per_run[same]
        lines.append(
            f"| {key[0]:2d} | {key[1]:2d} |"
            + markdown_axes(dict(zip(axes, key[2:], strict=True)), axes)
            + f" {len(cell):6d} | {counts.get('proved', 0):6d} "
            f"| {counts.get('failed', 0):6d} | {counts.get('skipped', 0):7d} "
            f"| {int(runs['certified'].sum()):>6d} / {len(runs):<6d}"
            f"| {cell['seconds'].sum():7.2f} | {cell['seconds'].max():7.2f} |"
        )
    return "\n".join(lines)


def proven_minima(table: pd.DataFrame) -> pd.DataFrame:
    """The proven minima (global and spurious) with their type, F enclosure, eigenvalue
    bound and multiplicity."""
    chosen = table[(table["certified"] == "proved") & (table["status"] != Status.SADDLE)]
    return chosen[["k", "n", *axis_columns(table.columns), "status", "symmetry", "loss_low",
                   "loss_high", "min_eig_low", "multiplicity"]].reset_index(drop=True)  # fmt: skip


def _down(x: float, digits: int = 10) -> str:
    """x rounded down to `digits` decimals (exactly: Decimal holds the float's value)."""
    return format(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_FLOOR), "f")


def _up(x: float, digits: int = 10) -> str:
    return format(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_CEILING), "f")


def format_markdown(minima: pd.DataFrame) -> str:
    axes = axis_columns(minima.columns)
    lines = ["| k | n |" + "".join(f" {axis} |" for axis in axes) + " minimum | type "
             "| F on the proven box (rounded outward) | smallest eigenvalue >= | runs |",
             "|---|---|" + "---|" * len(axes) + "---|---|---|---|---|"]  # fmt: skip
    for values, row in zip(minima[axes].itertuples(index=False), minima.itertuples(index=False),
                           strict=True):  # fmt: skip
        lines.append(
            f"| {row.k} | {row.n} |"
            + "".join(f" {v} |" for v in values)
            + f" {row.status} | {row.symmetry} "
            f"| [{_down(row.loss_low)}, {_up(row.loss_high)}] | {_down(row.min_eig_low, 6)} "
            f"| {row.multiplicity} |"
        )
    return "\n".join(lines)


def format_latex(minima: pd.DataFrame) -> str:
    lines = [
        r"\begin{tabular}{rrllcrr}",
        r"\hline",
        r"$k$ & $n$ & minimum & type & $F$ on the proven box & $\lambda_{\min} \geq$ & runs \\",
        r"\hline",
    ]
    for row in minima.itertuples(index=False):
        lines.append(
            f"{row.k} & {row.n} & {row.status} & {row.symmetry} & "
            f"$[{_down(row.loss_low)}, {_up(row.loss_high)}]$ & {_down(row.min_eig_low, 6)} & "
            f"{row.multiplicity} \\\\"
        )
    return "\n".join([*lines, r"\hline", r"\end{tabular}"])
