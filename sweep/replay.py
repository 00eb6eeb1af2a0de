"""Replay one run of a sweep from its key, recording its whole trajectory.

The run goes through the engine itself (`Engine.train` with a recorder), so it is
scheduled, paused, finished and classified exactly as in the sweep.
"""

import numpy as np
import pandas as pd

from . import problems, train
from .config import Cell, Config
from .engine import Engine
from .outcomes import StopReason


class _Trajectory:
    """A `engine.Recorder` that keeps one run's loss and gradient norm at every step."""

    def __init__(self, run: int):
        self.run = run
        self.parts = []

    def __call__(self, slot_run: np.ndarray, history: train.History) -> None:
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
