"""Canonical forms of points under the loss's permutations, and the colour refinement
that tells rows and columns apart.

For the teacher V = I_k the loss is invariant under W -> P W Q with P a permutation of the
student neurons (rows) and Q one of the coordinates (columns), since Q only reorders the
teacher.
"""

import numpy as np

from ..limits import SAME_POINT


def labels(weights: np.ndarray, tol: float) -> np.ndarray:
    """Integer labels of the entries: equal labels for values within tol of each other."""
    flat = weights.ravel()
    order = np.argsort(flat)
    breaks = np.diff(flat[order]) > tol
    labels = np.empty(flat.size, int)
    labels[order] = np.concatenate([[0], np.cumsum(breaks)])
    return labels.reshape(weights.shape)


def refine(
    labels: np.ndarray, rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Colour rows and columns until stable (Weisfeiler-Lehman on the labelled bipartite
    graph): rows with equal colours are indistinguishable by the entries they carry."""
    n, d = labels.shape
    rows = np.zeros(n, int) if rows is None else np.asarray(rows)
    cols = np.zeros(d, int) if cols is None else np.asarray(cols)
    while True:
        new_rows = _recolour(rows, cols, labels)
        new_cols = _recolour(cols, rows, labels.T)
        if len(set(new_rows)) == len(set(rows)) and len(set(new_cols)) == len(set(cols)):
            return new_rows, new_cols
        rows, cols = new_rows, new_cols


def _recolour(own, other, labels):
    """New colour of each row: the rank of its signature, its colour and the sorted
    (colour, label) pairs of its entries, among the distinct signatures. A pair is coded
    as one integer in the same order, so the signatures compare as integer rows."""
    pairs = other[None, :] * (int(labels.max()) + 1) + labels
    signatures = np.column_stack([own, np.sort(pairs, axis=1)])
    order = np.lexsort(signatures.T[::-1])  # by the first column, then the next, ...
    ranked = signatures[order]
    new = np.r_[True, np.any(ranked[1:] != ranked[:-1], axis=1)]
    colours = np.empty(len(own), int)
    colours[order] = np.cumsum(new) - 1
    return colours


def canonical_form(weights: np.ndarray, decimals: int = 6) -> np.ndarray:
    """A representative of W's orbit under row and column permutations.

    Columns are ordered by their sorted entries, then rows lexicographically. Ties between
    columns are left in place; for the structured points gradient descent finds, tied
    columns are exchanged by a symmetry, and the row sort undoes the choice.
    """
    weights = np.asarray(weights)
    keys = np.round(weights, decimals)
    column_keys = [tuple(sorted(keys[:, j])) for j in range(weights.shape[1])]
    columns = sorted(range(weights.shape[1]), key=lambda j: column_keys[j])
    weights, keys = weights[:, columns], keys[:, columns]
    rows = np.lexsort(keys.T[::-1])
    return weights[rows]


def gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest entry-wise difference of two points' canonical forms (inf for points of
    different shapes)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return np.inf
    return float(np.max(np.abs(canonical_form(a) - canonical_form(b))))


def same_point(a: np.ndarray, b: np.ndarray, tol: float = SAME_POINT) -> bool:
    """Whether two points (n, d) are one point up to the loss's row and column
    permutations: their canonical forms agree to `tol` in every entry. The one answer to
    "same point?" for the catalogue, proofs, `critical` and its join with a sweep."""
    return gap(a, b) < tol


def same_canonical(a: np.ndarray, b: np.ndarray, tol: float = SAME_POINT) -> bool:
    """`same_point` for two points already in canonical form: `canonical_form` is
    idempotent (a permutation that sorts sorted rows and columns is the identity), so
    this is the same answer without sorting again."""
    return a.shape == b.shape and float(np.max(np.abs(a - b))) < tol
