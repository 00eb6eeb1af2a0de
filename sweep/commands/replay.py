"""Replay one run of a sweep from its key, recording its whole trajectory.

The run goes through the engine itself (`Engine.train` with a recorder), so it is
scheduled, paused, finished and classified exactly as in the sweep.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from .. import problems
from ..config import Cell, Config, ConfigError, cells
from ..engine import tracing
from ..engine.scheduler import Engine
from ..outcomes import StopReason
from ..results import runs_table


class _Trajectory:
    """A `engine.Recorder` that keeps one run's loss and gradient norm at every step."""

    def __init__(self, run: int):
        self.run = run
        self.parts = []

    def __call__(self, slot_run: np.ndarray, history: tracing.History) -> None:
        slots = np.flatnonzero(slot_run == self.run)
        if not slots.size:
            return
        slot = slots[0]
        taken = history.evaluated[:, slot]
        self.parts.append(
            pd.DataFrame(
                {
                    "step": history.steps[taken, slot].astype(np.int64),
                    "loss": history.loss[taken, slot],
                    "grad_norm": history.grad_norm[taken, slot],
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """One row per point evaluated; a point seen again after a pause is kept once."""
        frame = pd.concat(self.parts, ignore_index=True)
        return frame.drop_duplicates("step", keep="last").reset_index(drop=True)


def replay(
    config: Config, cell: Cell, run: int, devices: list | None = None
) -> tuple[pd.DataFrame, dict]:
    """Train run `run` of `cell` again, recording every step.

    Returns:
      (history, final): a DataFrame with step, loss and grad_norm at every evaluated point,
      and a dict with the final weights, steps, newton_steps, loss, grad_norm, stop
      reason, status and smallest Hessian eigenvalue.
    """
    problem = problems.for_cell(config, cell)
    trajectory = _Trajectory(run)
    (ends,) = Engine(config, devices).train(problem, [run], recorder=trajectory)
    found = problem.classify(ends)
    final = {
        "weights": ends.weights[0],
        "steps": int(ends.steps[0]),
        "newton_steps": int(ends.newton_steps[0]),
        "loss": float(ends.loss[0]),
        "grad_norm": float(ends.grad_norm[0]),
        "stop_reason": StopReason(int(ends.reason[0])).label,
        "status": str(found.status[0]),
        "min_eig": float(found.min_eig[0]),
    }
    return trajectory.frame(), final


def replay_stored(
    path: str | Path,
    k: int,
    n: int,
    run: int,
    axes: dict | None = None,
    devices: list | None = None,
) -> tuple[pd.DataFrame, dict, pd.Series, Cell]:
    """Replay run `run` of cell (k, n) of the sweep in folder `path` (`replay`), and return
    its stored row and its cell too: (history, final, stored, cell). A sweep with `[grid]`
    axes needs the cell's value of each in `axes` ({"optimizer.step_size": "1/k"}). The
    caller sets up the process (`runtime.prepare_process` or `runtime.sweep_settings`)."""
    root, config = runs_table.open_sweep(path)
    axes = axes or {}
    names = [name for name, _ in config.grid]
    if sorted(axes) != sorted(names):
        given = ", ".join(f"{key}={value}" for key, value in axes.items()) or "none"
        values = {name: sorted({str(v) for v in values}) for name, values in config.grid}
        example = " ".join(f"--at {name}={vals[0]}" for name, vals in values.items())
        expected = (f"one value for each axis of this sweep, e.g. {example}" if names
                    else "nothing: this sweep has no [grid] axes")  # fmt: skip
        raise ConfigError("--at", None, None, detail=f"--at: expected {expected}, got {given}")
    wanted = (k, n, *(axes[name] for name in names))
    matching = [c for c in cells(config) if _same(c.key, wanted)]
    if not matching:
        found = "; ".join(c.describe() for c in cells(config))
        shown = " ".join([f"k={k} n={n}", *(f"{a}={v}" for a, v in axes.items())])
        raise ConfigError("--k/--n", f"a cell of this sweep ({found})", shown)
    cell = matching[0]
    stored = runs_table.load(root, k=k, n=n, run=run, **dict(cell.axes))
    if stored.empty:
        raise ConfigError("--run", f"a run stored in {root} (0..{config.seeds - 1})", run)
    history, final = replay(config, cell, run, devices)
    return history, final, stored.iloc[0], cell


def _same(key: tuple, wanted: tuple) -> bool:
    """A cell key against one given on the command line, where 5/k may come as "5/k" and
    0.5 as 0.5 or "0.5"."""
    return all(str(a) == str(b) for a, b in zip(key, wanted, strict=True))
