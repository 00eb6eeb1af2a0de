"""The sweep grid: the cells (k, n, d) a config expands into, in a fixed order."""

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

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n, self.d, self.k)

    @property
    def label(self) -> str:
        return f"k{self.k:02d}-n{self.n:02d}-d{self.d:02d}"


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


def cells(config: "Config") -> list[Cell]:
    """The sweep grid of a `Config`: one Cell per (k, n), in a fixed order."""
    grid = []
    for k in config.k:
        d = _input_dimension(config, k)
        for n in widths_for(config.n, k):
            names = dict(k=k, n=n, d=d)
            step = evaluate(config.optimizer.step_size, "optimizer.step_size", **names)
            if not step > 0 or not math.isfinite(step):
                raise ConfigError(
                    "optimizer.step_size", f"a step size > 0 (k = {k} gives {step})", step
                )
            grid.append(
                Cell(k=k, n=n, d=d, step_size=float(step), init_scale=_init_scale(config, names))
            )
    return grid
