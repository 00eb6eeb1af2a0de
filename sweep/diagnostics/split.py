"""Splitting a neuron: what a critical point W of n = k becomes at n = k + 1 when one of its
neurons w is shared between two, (lam w, (1 - lam) w) with 0 < lam < 1.

ReLU is positively homogeneous, so the network function does not change: every such point
is critical, with W's loss, on a segment of critical points. Moving the two neurons apart,
(lam w + t u, (1 - lam) w - t u), adds to the output

    Delta(x) = relu(a) + relu(b) - relu(a + b) >= 0,   a = lam s + t e, b = (1 - lam) s - t e,

with s = w . x and e = u . x: it is nonzero only in a slab |s| = O(t) around w's
hyperplane, where its integral over s is (t e)^2 / (2 lam (1 - lam)). Under Gaussian
inputs s is independent of x's projection P x onto that hyperplane, so

    F(split + t u) - F(W) = t^2 / (2 lam (1 - lam)) * phi(0) / |w| * u^T A u + O(t^3),
    A = sum_i m(P w_i) - sum_j m(P v_j),   m(a) = (|a| P + a a^T / |a|) / sqrt(2 pi),

from E[relu(a . z) (u . z)^2] = (|a| |u|^2 + (a . u)^2 / |a|) / sqrt(2 pi) (z standard
normal on the hyperplane; rows with P a = 0, w itself among them, add nothing). Where A
has a negative eigenvalue on the hyperplane, the split point is a saddle for every lam
(to second order); where A is positive definite, every splitting direction raises F to
second order. This is computed in floating point (the O(t^3) remainder is not bounded):
a classification, not a proof, and tested against F itself.
"""

import numpy as np

SQRT_2PI = np.sqrt(2 * np.pi)


def curvature_matrix(weights: np.ndarray, teacher: np.ndarray, neuron: int) -> np.ndarray:
    """The coefficient matrix C of t^2 / (lam (1 - lam)) in F(split + t u) - F(W) for
    splitting `neuron` (u^T C u, u on the neuron's hyperplane): phi(0) A / (2 |w|)."""
    w = weights[neuron]
    norm = np.linalg.norm(w)
    projector = np.eye(len(w)) - np.outer(w, w) / norm**2
    total = np.zeros((len(w), len(w)))
    for rows, sign in ((weights, 1.0), (teacher, -1.0)):
        for row in rows:
            a = projector @ row
            size = np.linalg.norm(a)
            if size > 1e-12 * max(1.0, np.linalg.norm(row)):
                total += sign * (size * projector + np.outer(a, a) / size)
    return projector @ total @ projector / (SQRT_2PI * SQRT_2PI * 2 * norm)


def curvatures(weights: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """For each neuron, the smallest eigenvalue of its `curvature_matrix` on its
    hyperplane (the eigenvalue 0 along w itself left out)."""
    found = []
    for i, w in enumerate(weights):
        basis = np.linalg.svd(w[None, :])[2][1:]  # an orthonormal basis of w's hyperplane
        found.append(np.linalg.eigvalsh(basis @ curvature_matrix(weights, teacher, i) @ basis.T)[0])
    return np.array(found)


GLOBAL = 1e-12  # below this loss the residual is 0: splitting keeps the global minimum


def fate(weights: np.ndarray, k: int, loss: float) -> tuple[str, float]:
    """What splitting a neuron of a minimum does (computed, second order): ("global", nan)
    at F = 0; ("saddle", the largest of the neurons' smallest curvatures) where splitting
    any neuron lowers F; ("saddle for i of n neurons", ...) where only some do; ("no
    second-order descent", the smallest curvature) where none does."""
    if loss < GLOBAL:
        return "global", np.nan
    low = curvatures(weights, np.eye(k, weights.shape[1]))
    falling = int(np.sum(low < 0))
    if falling == len(low):
        return "saddle", float(low.max())
    if falling:
        return f"saddle for {falling} of {len(low)} neurons", float(low.max())
    return "no second-order descent", float(low.min())
