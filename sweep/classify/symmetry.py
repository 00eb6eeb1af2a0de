"""Symmetry types of critical points and their canonical forms (Arjevani & Field).

For the teacher V = I_k the loss is invariant under W -> P W Q with P a permutation of the
student neurons (rows) and Q one of the coordinates (columns), since Q only reorders the
teacher. The spurious minima that gradient descent finds break the least symmetry: after
pairing rows with columns, the indices split into groups of sizes p = [p_1, ..., p_m] with
diagonal blocks ``a I + b 11^T`` and constant off-diagonal blocks. p = [k] is the global
minimum; [1, k-1] the isotropy Delta(S_1 x S_{k-1}).
"""

import itertools
from collections import Counter

import numpy as np

NONE = "none"  # a point without such a block structure


def _labels(weights, tol):
    """Integer labels of the entries: equal labels for values within tol of each other."""
    flat = weights.ravel()
    order = np.argsort(flat)
    breaks = np.diff(flat[order]) > tol
    labels = np.empty(flat.size, int)
    labels[order] = np.concatenate([[0], np.cumsum(breaks)])
    return labels.reshape(weights.shape)


def _refine(labels):
    """Colour rows and columns until stable (Weisfeiler-Lehman on the labelled bipartite
    graph): rows with equal colours are indistinguishable by the entries they carry."""
    n, d = labels.shape
    rows, cols = np.zeros(n, int), np.zeros(d, int)
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


def _is_diagonal_block(block):
    """Is a square block a I + b 11^T with rows and columns paired by some permutation?"""
    values = Counter(block.ravel().tolist())
    size = block.shape[0]
    if len(values) == 1:
        return True
    if size == 1 or len(values) != 2:
        return False
    diagonal = [v for v, count in values.items() if count == size]
    for value in diagonal:
        marked = block == value
        if (marked.sum(0) == 1).all() and (marked.sum(1) == 1).all():
            return True
    return False


def symmetry_type(weights: np.ndarray, tol: float = 1e-5) -> str:
    """The block pattern of a point as a string such as "1+5", or "none".

    "none" also covers the trivial pattern 1+1+...+1 (no symmetry at all).

    Args:
      weights: (n, d) point; the pattern is defined for square W (n = d = k).
      tol: entries closer than this count as equal.
    """
    weights = np.asarray(weights)
    n, d = weights.shape
    if n != d:
        return NONE
    labels = _labels(weights, tol)
    rows, cols = _refine(labels)
    row_groups = [np.flatnonzero(rows == c) for c in np.unique(rows)]
    col_groups = [np.flatnonzero(cols == c) for c in np.unique(cols)]
    if sorted(map(len, row_groups)) != sorted(map(len, col_groups)):
        return NONE
    # Pair each row group with a column group of its size whose block is a I + b 11^T.
    pairing = {}
    for g, row_group in enumerate(row_groups):
        for h, col_group in enumerate(col_groups):
            if h in pairing.values() or len(col_group) != len(row_group):
                continue
            if _is_diagonal_block(labels[np.ix_(row_group, col_group)]):
                pairing[g] = h
                break
        else:
            return NONE
    for g, h in itertools.product(range(len(row_groups)), range(len(col_groups))):
        if pairing[g] != h and len(np.unique(labels[np.ix_(row_groups[g], col_groups[h])])) > 1:
            return NONE
    sizes = sorted(len(group) for group in row_groups)
    if max(sizes) == 1 and n > 1:
        return NONE  # every index on its own: no symmetry left to report
    return "+".join(map(str, sizes))


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
