"""What the piecewise conditions say of one point."""

from dataclasses import dataclass

import numpy as np

# Kinds of verdicts.
MINIMUM = "minimum"  # directionally stationary, no descent of first or second order
SADDLE = "saddle"  # stationary with a descent direction (`direction`)
NOT_STATIONARY = "not_stationary"  # some direction lowers the loss at first order
UNDECIDED = "undecided"  # stationary, but the check could not settle it (`reason`)


@dataclass
class Verdict:
    kind: str  # MINIMUM, SADDLE, NOT_STATIONARY or UNDECIDED
    kinks: int  # (neuron, data point) pairs on a kink
    # Smallest distance of a kink pair's subgradient weight to the ends of its interval,
    # as a fraction of the interval: > 0 strictly stationary, < 0 not stationary; NaN
    # where no pair is on a kink.
    margin: float
    gradient: float  # norm of what must vanish for stationarity (the smooth part)
    escape: int  # escape neurons (Wu, Simsek & Ged)
    decided_by: str  # "kink", "escape_neuron", "hessian" or "plateau" (`DecidedBy`)
    reason: str  # one sentence: why this verdict
    direction: np.ndarray | None = None  # a unit descent direction in theta (saddles)
