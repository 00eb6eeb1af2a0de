"""Classification and diagnostics of converged points, in float64."""

from .classify import STATUSES as STATUSES
from .classify import classify as classify
