"""Replay one run of a sweep from its key, recording its whole trajectory.

The run goes through the engine itself (`Engine.train` with a recorder), so it is
scheduled, paused, finished and classified exactly as in the sweep.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from . import problems
from .config import Cell, Config, ConfigError, cells
from .engine import segments
from .engine.scheduler import Engine
from .outcomes import StopReason
from .results import runs_table


class _Trajectory:
    """A `engine.Recorder` that keeps one run's loss and gradient norm at every step."""

    def __init__(self, run: int):
        self.run = run
        self.parts = []

    def __call__(self, slot_run: np.ndarray, history: segments.History) -> None:
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
    path: str | Path, k: int, n: int, run: int, devices: list | None = None
) -> tuple[pd.DataFrame, dict, pd.Series]:
    """Replay run `run` of cell (k, n) of the sweep in folder `path` (`replay`), and return
    its stored row too: (history, final, stored). The caller sets up the process
    (`runtime.prepare_process` or `runtime.sweep_settings`)."""
    root, config = runs_table.open_sweep(path)
    matching = [c for c in cells(config) if (c.k, c.n) == (k, n)]
    if not matching:
        found = ", ".join(f"k={c.k} n={c.n}" for c in cells(config))
        raise ConfigError("--k/--n", f"a cell of this sweep ({found})", f"k={k} n={n}")
    stored = runs_table.load(root, k=k, n=n, run=run)
    if stored.empty:
        raise ConfigError("--run", f"a run stored in {root} (0..{config.seeds - 1})", run)
    history, final = replay(config, matching[0], run, devices)
    return history, final, stored.iloc[0]
