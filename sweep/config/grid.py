"""The sweep grid: the cells a config expands into, in a fixed order.

A cell is one width triple (k, n, d) and one value of every extra axis of the `[grid]`
table (any field of a config section, such as "optimizer.step_size"). Cells are ordered
by k, then n, then the axes' combinations in the order the table lists their values.
"""

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError
from .expressions import evaluate, widths_for

if TYPE_CHECKING:  # the schema imports nothing from here; annotations only
    from .schema import Config


@dataclass(frozen=True)
class Cell:
    """One point of the sweep grid: every run of a cell shares these values."""

    k: int
    n: int
    d: int
    step_size: float
    init_scale: float
    # The cell's value of each `[grid]` axis, as ("section.field", value) pairs, and the
    # index of that combination among all of them (it names the cell's files).
    axes: tuple[tuple[str, object], ...] = ()
    variant: int = 0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n, self.d, self.k)

    @property
    def label(self) -> str:
        widths = f"k{self.k:02d}-n{self.n:02d}-d{self.d:02d}"
        return f"{widths}-g{self.variant:02d}" if self.axes else widths

    @property
    def key(self) -> tuple:
        """What tells this cell from the others of its sweep: (k, n, axis values...)."""
        return (self.k, self.n, *(value for _, value in self.axes))

    def describe(self) -> str:
        """k=6 n=6 optimizer.step_size=1/k: the cell as a person reads it."""
        return " ".join([f"k={self.k} n={self.n}", *(f"{a}={v}" for a, v in self.axes)])


def axis_columns(columns) -> list[str]:
    """The `[grid]` axis columns among a table's columns: those named "section.field"."""
    return [name for name in columns if "." in name]


def markdown_head(axes: list[str], columns: str) -> list[str]:
    """The two header lines of a Markdown table of cells: k, n, the axes, then `columns`
    ("| a | b |" without the first bar)."""
    names = "".join(f" {axis} |" for axis in axes)
    rule = "".join("-" * (len(axis) + 2) + "|" for axis in axes)
    below = "|".join("-" * len(part) for part in columns.split("|")[:-1]) + "|"
    return [f"|  k |  n |{names}{columns}", f"|----|----|{rule}{below}"]


def markdown_axes(values: dict, axes: list[str]) -> str:
    """A cell's axis values for a row of a `markdown_head` table (" 1/k |")."""
    return "".join(f" {values[axis]!s:>{len(axis)}} |" for axis in axes)


def with_axes(config: "Config", axes: tuple[tuple[str, object], ...]) -> "Config":
    """`config` with the given axis values set in their sections (no validation: the
    validation checks every combination once)."""
    for dotted, value in axes:
        section, _, name = dotted.partition(".")
        table = dataclasses.replace(getattr(config, section), **{name: value})
        config = dataclasses.replace(config, **{section: table})
    return config


def cell_config(config: "Config", cell: Cell) -> "Config":
    """The config one cell's runs follow: the sweep's, with the cell's axis values."""
    return with_axes(config, cell.axes)


def axis_combinations(config: "Config") -> list[tuple[tuple[str, object], ...]]:
    """Every combination of the `[grid]` axes' values, the last axis varying fastest."""
    names = [name for name, _ in config.grid]
    return [
        tuple(zip(names, values, strict=True))
        for values in itertools.product(*(values for _, values in config.grid))
    ]


def _input_dimension(config, k: int) -> int:
    d = evaluate(config.problem.d, "problem.d", k=k)
    if not float(d).is_integer() or d < 1:
        raise ConfigError("problem.d", f"an input dimension >= 1 (k = {k} gives {d})", d)
    d = int(d)
    if config.problem.data == "points" and d != 1:
        raise ConfigError("problem.d", "1 for problem.data = points", config.problem.d)
    if config.problem.teacher == "orthonormal" and d < k:
        raise ConfigError(
            "problem.d", f"at least k for the orthonormal teacher (k = {k} gives {d})", d
        )
    return d


def _init_scale(config, names: dict) -> float:
    scale = {"xavier": 1 / math.sqrt(names["d"]), "he": math.sqrt(2 / names["d"])}.get(
        config.init.kind
    )
    if scale is None:
        scale = evaluate(config.init.scale, "init.scale", **names)
        if not scale > 0 or not math.isfinite(scale):
            raise ConfigError("init.scale", f"a scale > 0 (k = {names['k']} gives {scale})", scale)
    return float(scale)


def _cell(config, k: int, n: int, d: int, axes: tuple, variant: int) -> Cell:
    names = dict(k=k, n=n, d=d)
    step = evaluate(config.optimizer.step_size, "optimizer.step_size", **names)
    if not step > 0 or not math.isfinite(step):
        raise ConfigError("optimizer.step_size", f"a step size > 0 (k = {k} gives {step})", step)
    return Cell(k=k, n=n, d=d, step_size=float(step), init_scale=_init_scale(config, names),
                axes=axes, variant=variant)  # fmt: skip


# Named activations with s(0) != 0: an extra neuron with a fixed output weight always adds
# a function, so no wider student reaches F = 0.
NONZERO_AT_ZERO = ("normal_cdf", "sigmoid", "softplus")


def _reachable(problem, k: int, n: int) -> None:
    if n > k and problem.output == "fixed" and problem.activation in NONZERO_AT_ZERO:
        raise ConfigError(
            "sweep.n", None, None,
            detail=f"sweep.n: expected n = k for activation {problem.activation} with fixed "
            f"output weights, got n = {n} at k = {k}: {problem.activation}(0) != 0, so an "
            "extra neuron cannot vanish and no run reaches F = 0; set problem.output = "
            "\"trained\"",
        )  # fmt: skip


def cells(config: "Config") -> list[Cell]:
    """The sweep grid of a `Config`: one Cell per (k, n) and combination of the `[grid]`
    axes, in a fixed order."""
    variants = [(axes, with_axes(config, axes)) for axes in axis_combinations(config)]
    grid = []
    for k in config.k:
        for variant, (axes, settings) in enumerate(variants):
            d = _input_dimension(settings, k)
            for n in widths_for(settings.n, k):
                if 0 < n < k:  # k = 0: explicit targets, no teacher to represent
                    raise ConfigError(
                        "sweep.n", None, None,
                        detail=f"sweep.n: expected student widths n >= k, got {settings.n!r} "
                        f"(n = {n} at k = {k}): a student narrower than its teacher cannot "
                        "reach F = 0, so no run could be called global",
                    )  # fmt: skip
                _reachable(settings.problem, k, n)
                grid.append(_cell(settings, k, n, d, axes, variant))
    grid.sort(key=lambda cell: (config.k.index(cell.k), cell.n, cell.variant))
    return grid
