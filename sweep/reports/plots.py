"""PNG figures of a sweep: rates against k, spurious objective values, steps to converge.

Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot: they need
no display and leave the caller's matplotlib backend and open figures alone. matplotlib is
imported when the first figure is drawn: a sweep that draws none does not pay for it.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..config.grid import axis_columns
from ..outcomes import Status


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    # No "+1e-3"-style offset above the axis when the values are (nearly) equal.
    axes.ticklabel_format(useOffset=False)
    return figure, axes


def _band(axes, x, y, low, high, label: str):
    """A line with its interval as a band, or as error bars where there is one point
    (a band of one point is invisible)."""
    if len(x) == 1:
        return axes.errorbar(x, y, yerr=[y - low, high - y], marker="o", capsize=4,
                             label=label)  # fmt: skip
    line = axes.plot(x, y, marker="o", label=label)[0]
    axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    return line


def _integer_ticks():
    import matplotlib.ticker

    return matplotlib.ticker.MaxNLocator(integer=True)


def _plain_numbers():
    import matplotlib.ticker

    return matplotlib.ticker.ScalarFormatter()


def _save(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


def _cells(frame: pd.DataFrame, by: tuple = ("k", "n")):
    """(label, rows) per cell: `by` and the `[grid]` axes, such as "k = 6, n = 6, 1/k"."""
    axes = axis_columns(frame.columns)
    for key, group in frame.groupby([*by, *axes], sort=True):
        key = key if isinstance(key, tuple) else (key,)
        names = [f"{name} = {value}" for name, value in zip(by, key, strict=False)]
        yield ", ".join([*names, *map(str, key[len(by) :])]), group


BANDS = {"wilson": "95% Wilson intervals", "sequence": "95% confidence sequences"}


def rate_vs_k(
    table: pd.DataFrame,
    path: Path,
    reference: pd.DataFrame | None = None,
    interval: str = "wilson",
) -> Path:
    """% spurious against k with its 95% bands (`interval`: Wilson's, or the confidence
    sequence of an adaptive sweep), one line per n - k; published points (a DataFrame
    with k, n, spurious_pct) overlaid when given."""
    figure, axes = _figure()
    table = table.assign(excess=table["n"] - table["k"])
    groups = list(_cells(table, by=("excess",)))
    one_k = table["k"].nunique() == 1
    for index, (label, group) in enumerate(groups):
        excess = int(group["excess"].iloc[0])
        label = label.replace(f"excess = {excess}", "n = k" if excess == 0 else f"n = k{excess:+d}")
        # One k: the cells' error bars side by side, not on top of each other.
        shift = 0.08 * (index - (len(groups) - 1) / 2) if one_k else 0.0
        _band(axes, group["k"].to_numpy() + shift, group["spurious_%"].to_numpy(),
              group["ci95_low_%"].to_numpy(), group["ci95_high_%"].to_numpy(), label)  # fmt: skip
    if one_k:
        k = int(table["k"].iloc[0])
        axes.set_xlim(k - 1, k + 1)
    if reference is not None and len(reference):
        axes.plot(
            reference["k"], reference["spurious_pct"], "kx", markersize=9, label="published (n = k)"
        )
    axes.xaxis.set_major_locator(_integer_ticks())
    axes.set_xlabel("teacher width k")
    axes.set_ylabel("runs ending in a spurious minimum (%)")
    axes.set_title(f"Spurious minima found by gradient descent ({BANDS[interval]})")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def spurious_objectives(frame: pd.DataFrame, path: Path) -> Path:
    """Histogram of the objective at the spurious minima, one panel row per k."""
    spurious = frame[frame["status"] == Status.SPURIOUS]
    figure, axes = _figure()
    if len(spurious):
        bins = np.linspace(spurious["loss"].min(), spurious["loss"].max() + 1e-12, 40)
        for label, group in _cells(spurious):
            axes.hist(
                group["loss"],
                bins=bins,
                histtype="step",
                linewidth=1.5,
                label=f"{label} ({len(group)} runs)",
            )
        axes.legend(fontsize="small")
    else:
        axes.text(
            0.5, 0.5, "no spurious minima in this sweep", ha="center", transform=axes.transAxes
        )
    axes.set_xlabel("objective F at the spurious minimum")
    axes.set_ylabel("runs")
    axes.set_title("Objective values of the spurious minima")
    return _save(figure, path)


def steps_to_converge(frame: pd.DataFrame, path: Path) -> Path:
    """Distribution (empirical CDF) of the steps each run took, one line per (k, n)."""
    figure, axes = _figure()
    for label, group in _cells(frame):
        steps = np.sort(group["steps"].to_numpy())
        axes.step(steps, np.arange(1, len(steps) + 1) / len(steps), where="post", label=label)
    axes.set_xscale("log")
    axes.set_xlabel("optimizer steps taken (log scale)")
    axes.set_ylabel("fraction of runs finished")
    axes.set_title("Steps to converge")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def trajectory(history: pd.DataFrame, path: Path, title: str) -> Path:
    """Loss and gradient norm along one run (log scale)."""
    figure, axes = _figure()
    axes.semilogy(history["step"], np.maximum(history["loss"], 1e-300), label="loss F")
    axes.semilogy(history["step"], history["grad_norm"], label="|grad F|")
    axes.set_xlabel("step")
    axes.set_ylabel("value (log scale)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def linear_vs_width(table: pd.DataFrame, path: Path) -> Path:
    """% of runs ending essentially linear against the width (log scale), one line per
    sweep (init or optimizer), with 95% Wilson bands."""
    figure, axes = _figure()
    for name, group in table.groupby("sweep", sort=True):
        _band(axes, group["n"].to_numpy(), group["linear_%"].to_numpy(),
              group["ci95_low_%"].to_numpy(), group["ci95_high_%"].to_numpy(), name)  # fmt: skip
    axes.set_xscale("log", base=2)
    axes.xaxis.set_major_formatter(_plain_numbers())
    axes.set_xlabel("student width n")
    axes.set_ylabel("runs ending essentially linear (%)")
    axes.set_ylim(-2, 102)
    axes.set_title("1-D ReLU nets that end as linear regression on each half-line")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)
