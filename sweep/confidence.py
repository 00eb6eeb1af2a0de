"""Intervals for a rate of runs (the spurious rate of a cell): Wilson's interval for a
fixed number of runs, and a confidence sequence for runs added in waves until it is tight.

A fixed-n interval checked after every wave and stopped on once narrow enough covers the
rate less often than its nominal level. A confidence sequence covers it at every number of
runs at once (time-uniformly), so stopping whenever it is tight keeps its level. The one
here is Robbins' beta-binomial mixture (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021, Section 3.2 and
Appendix): with S successes in t runs and a Beta(a, b) mixing density,

    M_t(p) = B(a + S, b + t - S) / (B(a, b) p^S (1 - p)^(t - S))

is a nonnegative martingale with M_0 = 1 under the true rate p, so by Ville's inequality
P(some t has M_t(p) >= 1/alpha) <= alpha, and {p : M_t(p) < 1/alpha} is a (1 - alpha)
confidence sequence. log M_t is convex in p, so each set is an interval around S/t.
"""

import math

import numpy as np
from scipy.special import betaln

Z95 = 1.959963984540054
# The mixing density Beta(1/2, 1/2) (Jeffreys'): tight at rates near 0 and 1, where
# adaptive sampling saves most.
PRIOR = (0.5, 0.5)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95%), as (low, high)."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # Exactly 0 (1) with no success (failure): rounding would leave ~1e-16.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def log_mixture(successes, trials, p, prior: tuple[float, float] = PRIOR):
    """log M_t(p) of the beta-binomial mixture (arrays broadcast); +inf where p is
    impossible (p = 0 with a success, p = 1 with a failure)."""
    a, b = prior
    successes, trials, p = np.broadcast_arrays(*map(np.asarray, (successes, trials, p)))
    failures = trials - successes
    with np.errstate(divide="ignore", invalid="ignore"):
        likelihood = np.where(successes > 0, successes * np.log(p), 0.0)
        likelihood = likelihood + np.where(failures > 0, failures * np.log1p(-p), 0.0)
    return betaln(a + successes, b + failures) - betaln(a, b) - likelihood


def confidence_sequence(
    successes: int, trials: int, alpha: float = 0.05, prior: tuple[float, float] = PRIOR
) -> tuple[float, float]:
    """The (1 - alpha) beta-binomial confidence sequence at (successes, trials), as
    (low, high): every p with M_t(p) < 1/alpha (bisection to 1e-12 on each side)."""
    if trials == 0:
        return (0.0, 1.0)
    threshold = math.log(1 / alpha)
    centre = successes / trials

    def inside(p):
        return log_mixture(successes, trials, p, prior) < threshold

    def edge(outer):
        if inside(outer):
            return outer
        near, far = centre, outer
        while abs(far - near) > 1e-12:
            middle = (near + far) / 2
            near, far = (middle, far) if inside(middle) else (near, middle)
        return near

    return (edge(0.0), edge(1.0))


def halfwidth(interval: tuple[float, float], rate: float) -> float:
    """How far the interval reaches from the observed rate on its wider side: an adaptive
    cell stops once this is at most `target_halfwidth`, so the interval lies within
    rate +- target on both sides."""
    return max(rate - interval[0], interval[1] - rate)
