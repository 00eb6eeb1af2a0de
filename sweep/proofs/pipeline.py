"""Proving points, one pipeline for every caller (`certify`, `critical`, `sweep.certify`):
which route proves a point, what it must confirm, the verdict (proved / failed / skipped,
with a reason), and the proofs run on every core in worker processes.

A point with a symmetry group is proved in its fixed-point space (`symmetric.py`, a cost
flat in k); the full-space proof (`certificate.py`) is the route for a point without
one, and the fallback where the first fails, up to a size limit.
"""

import concurrent.futures
import dataclasses
import multiprocessing
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..limits import FULL_SPACE_PROOF, RUN_END_SYMMETRY, SMALLEST_RADIUS
from ..outcomes import PointKind, Verdict
from ..runtime import cpu_cores
from ..symmetry.structure import Structure, detect
from .certificate import Certificate, certify
from .smooth import ArcsineLandscape
from .symmetric import certify_symmetric

SYMMETRIC, FULL_SPACE = "symmetric", "full space"  # the routes
ARCSINE = ("erf", "normal_cdf")  # activations with enclosures besides ReLU's (`smooth.py`)


def prove_point(
    weights: np.ndarray,
    k: int,
    structure: Structure | None = None,
    radius: float = SMALLEST_RADIUS,
    full_limit: int = FULL_SPACE_PROOF,
    alpha: float = 0.0,
    activation: str = "relu",
) -> Certificate:
    """Prove what the critical point near `weights` (n, d) is, teacher [I_k 0]: in Fix(G)
    for a point with a group (`structure`, or its isotropy up to RUN_END_SYMMETRY), in the
    full space for a point without one or where the first fails, up to `full_limit`
    parameters (a failed fallback keeps both reasons). Leaky ReLU (`alpha`) takes the
    full-space route: the reduced loss is the ReLU one; so do erf and normal_cdf units
    (`activation`, `smooth.py`). The certificate's `route` says which proof it holds."""
    weights = np.asarray(weights, float)
    reason = ""
    if activation in ARCSINE:
        if weights.size > full_limit:
            return Certificate.failed(
                f"{weights.size} parameters: above the full-space limit ({full_limit})",
                radius,
                weights,
                0.0,
            )
        found = certify(weights, k, radius=radius, landscape=ArcsineLandscape(activation))
        return dataclasses.replace(found, route=FULL_SPACE)
    if not alpha:
        structure = structure or detect(weights, k, RUN_END_SYMMETRY)
        if not structure.order_is_one:
            found = certify_symmetric(weights, structure, radius=radius)
            if found.proved or weights.size > full_limit:
                return dataclasses.replace(found, route=SYMMETRIC)
            reason = found.reason
    found = certify(weights, k, alpha, radius=radius)
    if reason and not found.proved:
        found = dataclasses.replace(found, reason=f"{reason}; in the full space: {found.reason}")
    return dataclasses.replace(found, route=FULL_SPACE)


@dataclass(frozen=True)
class Claim:
    """What a proof must confirm about a point, beyond its existence (None: no claim)."""

    kind: PointKind | None = None  # a minimum, or a saddle
    negative: int | None = None  # the Morse index
    loss_positive: bool | None = None  # True: F > 0 on the box; False: 0 lies in F's range


def judge(found: Certificate, claim: Claim) -> tuple[Verdict, str]:
    """(verdict, reason): a certificate checked against what it must confirm."""
    if not found.proved:
        return Verdict.FAILED, found.reason
    if claim.kind not in (None, found.kind):
        if claim.kind is PointKind.SADDLE:
            return Verdict.FAILED, "proved a strict minimum, not a saddle"
        return Verdict.FAILED, f"proved a saddle ({found.negative} negative eigenvalues)"
    if claim.negative is not None and found.negative != claim.negative:
        counted = f"the proof counts {found.negative} negative eigenvalues"
        return Verdict.FAILED, f"{counted}, not {claim.negative}"
    if claim.loss_positive is True and not found.loss_low > 0:
        return Verdict.FAILED, "F on the box reaches 0: not proved above the global minimum"
    if claim.loss_positive is False and not found.loss_low <= 0 <= found.loss_high:
        return Verdict.FAILED, "F on the box excludes 0: not the global minimum"
    return Verdict.PROVED, ""


@dataclass(frozen=True)
class ProofJob:
    """One point to prove: `prove(weights, radius)` gives its certificate (a picklable
    callable: a problem's `certify`, or `prove_point` with its arguments bound)."""

    prove: Callable[[np.ndarray, float], Certificate]
    weights: np.ndarray
    claim: Claim
    radius: float = SMALLEST_RADIUS


@dataclass(frozen=True)
class ProofOutcome:
    """A point's verdict, its reason, and the certificate behind it (None: skipped)."""

    verdict: Verdict
    reason: str
    certificate: Certificate | None = None

    @staticmethod
    def skipped(reason: str) -> "ProofOutcome":
        return ProofOutcome(Verdict.SKIPPED, reason)


def _run(job: ProofJob) -> ProofOutcome:
    """One proof, in a worker process: ball arithmetic only."""
    found = job.prove(job.weights, job.radius)
    return ProofOutcome(*judge(found, job.claim), found)


def prove_all(
    jobs: list[ProofJob], workers: int | None = None, progress: str | None = None
) -> list[ProofOutcome]:
    """Every job's outcome, in order, on `workers` processes (default: one per core);
    `progress`: a bar with this label on stderr while they run (None: silent)."""
    return map_in_workers(_run, jobs, workers, progress)


def map_in_workers(
    function: Callable, jobs: list, workers: int | None, progress: str | None = None
) -> list:
    """[function(job) for job in jobs] on `workers` processes (default: one per core)."""
    workers = workers or cpu_cores()
    bar = tqdm(total=len(jobs), desc=progress, unit="proof", disable=progress is None,
               file=sys.stderr, dynamic_ncols=True, leave=False)  # fmt: skip
    with bar:
        if workers <= 1 or len(jobs) <= 1:
            return [_counted(function(job), bar) for job in jobs]
        # Spawned workers: this process may hold JAX's threads, which a fork must not copy.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            return [_counted(found, bar) for found in pool.map(function, jobs)]


def _counted(found, bar):
    bar.update(1)
    return found
