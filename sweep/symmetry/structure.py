"""The isotropy of a point: the largest product of symmetric groups among the loss's
symmetries that fixes it (Arjevani & Field).

The loss of a student W (n, d) against the teacher V = [I_k 0] is invariant under
W -> P W Q^T, P permuting the student neurons (rows) and Q the teacher neurons together
with their input coordinates (columns). The groups found here are products of symmetric
groups S_p, one per *factor*; a factor acts on one or more *slots*, sets of p rows or p
columns labelled 0..p-1, all by the same permutation of labels. A factor with a row slot
and a column slot is a diagonal Delta S_p (the block between them is a I + b 11^T); one
with a row slot alone permutes p identical neurons; one with a column slot alone, p
identical coordinates. Every other block of W is constant.

Notation (the runs' `symmetry` column): the sizes of the factors with both rows and
columns joined by "+", e.g. "1+5" for Delta(S_1 x S_5) at n = k; factors of rows alone
follow a "|" ("4+10|1": Delta(S_4 x S_10) and one neuron of its own); factors of columns
alone a second "|". "none": no symmetry at all.
"""

import math
from dataclasses import dataclass

import numpy as np

from .canonical import labels as entry_labels
from .canonical import refine

NONE = "none"


def basis(signature: tuple) -> list[tuple[int, int, str]]:
    """A basis of Fix(G) for a structure's signature: (row slot, column slot, form), form
    "diag" or "off" (the a and b of a block a I + b 11^T between slots of one factor; no
    "off" for a factor of size 1) or "const"."""
    row_slots, col_slots, _, ones = signature
    found = []
    for r, f in enumerate(row_slots):
        for c, g in enumerate(col_slots):
            if f != g:
                found.append((r, c, "const"))
            else:
                found += [(r, c, "diag")] + ([] if ones[f] else [(r, c, "off")])
    return found


@dataclass(frozen=True, eq=False)
class Structure:
    """A product of symmetric groups acting on (n, d) points; see the module docstring.

    sizes[f] is factor f's p; row_slots[s] (col_slots[s]) the factor of slot s;
    teacher_slots[s] whether column slot s holds teacher coordinates (columns < k);
    row_slot[i], row_label[i] (col_slot[j], col_label[j]) place each row (column).
    """

    k: int
    sizes: tuple[int, ...]
    row_slots: tuple[int, ...]
    col_slots: tuple[int, ...]
    teacher_slots: tuple[bool, ...]
    row_slot: np.ndarray
    row_label: np.ndarray
    col_slot: np.ndarray
    col_label: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_slot), len(self.col_slot)

    @property
    def signature(self) -> tuple:
        """What the reduced loss's formula depends on besides the sizes: compiled once."""
        ones = tuple(p == 1 for p in self.sizes)
        return self.row_slots, self.col_slots, self.teacher_slots, ones

    @property
    def parameters(self) -> list[tuple[int, int, str]]:
        """A basis of Fix(G) (`basis`)."""
        return basis(self.signature)

    def counts(self) -> np.ndarray:
        """Entries of W per parameter."""
        p = [self.sizes[self.row_slots[r]] for r, _, _ in self.parameters]
        q = [self.sizes[self.col_slots[c]] for _, c, _ in self.parameters]
        forms = [form for _, _, form in self.parameters]
        return np.array([a if form == "diag" else a * (a - 1) if form == "off" else a * b
                         for a, b, form in zip(p, q, forms, strict=True)])  # fmt: skip

    def parameter_of(self) -> np.ndarray:
        """(n, d) array: the parameter each entry of a fixed point equals."""
        forms = {"diag": 0, "off": 1, "const": 2}
        table = np.full((len(self.row_slots), len(self.col_slots), 3), -1)
        for i, (r, c, form) in enumerate(self.parameters):
            table[r, c, forms[form]] = i
        same = np.array(self.row_slots)[self.row_slot][:, None] == np.array(
            self.col_slots)[self.col_slot][None, :]  # fmt: skip
        diagonal = self.row_label[:, None] == self.col_label[None, :]
        form = np.where(same, np.where(diagonal, 0, 1), 2)
        return table[self.row_slot[:, None], self.col_slot[None, :], form]

    def point(self, theta: np.ndarray) -> np.ndarray:
        """The fixed point with parameters theta."""
        return np.asarray(theta)[self.parameter_of()]

    def theta(self, weights: np.ndarray) -> np.ndarray:
        """The parameters of the nearest fixed point (the mean over each parameter's
        entries: the orthogonal projection onto Fix(G))."""
        index = self.parameter_of().ravel()
        sums = np.bincount(index, weights=np.asarray(weights, float).ravel())
        return sums / np.bincount(index)

    def split(self, marked: dict[int, int]) -> "Structure":
        """The subgroup fixing labels 0..m-1 of factor f for each f: m (marked[f]) in
        turn: each marked label becomes a factor of size 1, the rest one of size p - m."""
        sizes, new_of = [], {}  # (old factor, label or None for the rest) -> new factor
        for f, p in enumerate(self.sizes):
            m = min(marked.get(f, 0), p)
            for label in range(m):
                new_of[f, label] = len(sizes)
                sizes.append(1)
            if p > m:
                new_of[f, None] = len(sizes)
                sizes.append(p - m)

        def place(slots, slot_of, label_of):
            new_slots, where = [], {}
            for s, f in enumerate(slots):
                for key in [(f, label) for label in range(min(marked.get(f, 0), self.sizes[f]))]:
                    where[s, key[1]] = len(new_slots)
                    new_slots.append(new_of[key])
                if (f, None) in new_of:
                    where[s, None] = len(new_slots)
                    new_slots.append(new_of[f, None])
            slot, label = np.empty_like(slot_of), np.empty_like(label_of)
            for i, (s, a) in enumerate(zip(slot_of, label_of, strict=True)):
                m = min(marked.get(slots[s], 0), self.sizes[slots[s]])
                slot[i], label[i] = (where[s, a], 0) if a < m else (where[s, None], a - m)
            return tuple(new_slots), slot, label

        row_slots, row_slot, row_label = place(self.row_slots, self.row_slot, self.row_label)
        col_slots, col_slot, col_label = place(self.col_slots, self.col_slot, self.col_label)
        teacher = tuple(bool(self.teacher_slots[self.col_slot[np.flatnonzero(col_slot == s)[0]]])
                        for s in range(len(col_slots)))  # fmt: skip
        return Structure(self.k, tuple(sizes), row_slots, col_slots, teacher,
                         row_slot, row_label, col_slot, col_label)  # fmt: skip

    @property
    def log_order(self) -> float:
        """log of the group's order, sum of log p!: which of two groups is larger."""
        return float(sum(math.lgamma(p + 1) for p in self.sizes))

    @property
    def order_is_one(self) -> bool:
        return max(self.sizes) == 1

    def _factors(self) -> tuple[list, list, list]:
        """(sizes of factors with rows and columns, of rows alone, of columns alone), as
        (size, text) pairs; a lone row of its own and a lone column of its own count as
        one pair (their S_1 factors are the same trivial group)."""
        both, rows, cols = [], [], []
        for f, p in enumerate(self.sizes):
            r, c = self.row_slots.count(f), self.col_slots.count(f)
            text = str(p) if (r, c) in ((1, 1), (1, 0), (0, 1)) else f"{p}[{r}:{c}]"
            (both if r and c else rows if r else cols).append((p, text))
        singles = min(rows.count((1, "1")), cols.count((1, "1")))
        for _ in range(singles):
            rows.remove((1, "1"))
            cols.remove((1, "1"))
        return both + [(1, "1")] * singles, rows, cols

    def notation(self) -> str:
        """The block notation of the module docstring ("1+5", "4+10|1", "none")."""
        if self.order_is_one:
            return NONE
        parts = ["+".join(text for _, text in sorted(group)) for group in self._factors()]
        while len(parts) > 1 and not parts[-1]:
            parts.pop()
        return "|".join(part or "-" for part in parts)

    def group(self) -> str:
        """The group in Arjevani & Field's notation, e.g. "Δ(S1×S5)" or "Δ(S4×S10)"
        (identical neurons or coordinates permuted alone show as "× S2 (rows)")."""
        if self.order_is_one:
            return "1"
        both, rows, cols = self._factors()
        text = "Δ(" + "×".join(f"S{p}" for p, _ in sorted(both)) + ")" if both else ""
        extra = [f"S{p} (rows)" for p, _ in sorted(rows) if p > 1]
        extra += [f"S{p} (columns)" for p, _ in sorted(cols) if p > 1]
        return " × ".join([text] * bool(text) + extra)


def trivial(n: int, d: int, k: int) -> Structure:
    """The trivial group: every row and every column a slot of its own."""
    return Structure(k, (1,) * (n + d), tuple(range(n)), tuple(range(n, n + d)),
                     tuple(j < k for j in range(d)), np.arange(n), np.zeros(n, int),
                     np.arange(d), np.zeros(d, int))  # fmt: skip


def detect(weights: np.ndarray, k: int, tol: float = 1e-5) -> Structure:
    """The isotropy of W (n, d) up to `tol` (entries closer than tol count as equal).

    Rows and columns are coloured until stable (rows of one colour carry the same
    entries); a block between a row colour and a column colour of one size that is
    a I + b 11^T (a != b) ties them into one diagonal factor; the labels follow the
    positions of the a's. The result is checked entry by entry; a point whose colours do
    not form such a structure gets the trivial group.
    """
    weights = np.asarray(weights, float)
    n, d = weights.shape
    values = entry_labels(weights, tol)
    rows, cols = refine(values, cols=(np.arange(d) >= k).astype(int))
    row_classes = [np.flatnonzero(rows == c) for c in np.unique(rows)]
    col_classes = [np.flatnonzero(cols == c) for c in np.unique(cols)]
    # Classes as nodes 0..R-1 (rows) and R.. (columns); edges: non-constant diagonal blocks.
    members = row_classes + col_classes
    label = {}  # index into members -> labels of its members (by position)
    edges = []
    for a, rc in enumerate(row_classes):
        for b, cc in enumerate(col_classes):
            block = values[np.ix_(rc, cc)]
            if len(np.unique(block)) == 1:
                continue
            pairing = _diagonal(block)
            if pairing is None:
                return trivial(n, d, k)
            edges.append((a, len(row_classes) + b, pairing))
    factor = list(range(len(members)))  # union-find over classes

    def root(x):
        while factor[x] != x:
            x = factor[x]
        return x

    for a, b, _ in edges:
        factor[root(a)] = root(b)
    # Label each factor's classes from one class outward along the edges.
    pending = list(edges)
    for x in range(len(members)):
        if root(x) == x:
            label[x] = np.arange(len(members[x]))
    while pending:
        progressed = False
        for edge in list(pending):
            a, b, pairing = edge  # pairing[i] = column position of row position i's a
            if a in label and b in label:
                if not np.array_equal(label[b][pairing], label[a]):
                    return trivial(n, d, k)
            elif a in label:
                label[b] = np.empty_like(label[a])
                label[b][pairing] = label[a]
            elif b in label:
                label[a] = label[b][pairing]
            else:
                continue
            pending.remove(edge)
            progressed = True
        if not progressed:
            return trivial(n, d, k)
    roots = sorted({root(x) for x in range(len(members))})
    factor_of = {x: roots.index(root(x)) for x in range(len(members))}
    sizes = tuple(len(members[r]) for r in roots)
    row_slot, row_label = np.empty(n, int), np.empty(n, int)
    col_slot, col_label = np.empty(d, int), np.empty(d, int)
    for a, rc in enumerate(row_classes):
        row_slot[rc], row_label[rc] = a, label[a]
    for b, cc in enumerate(col_classes):
        col_slot[cc], col_label[cc] = b, label[len(row_classes) + b]
    found = Structure(
        k, sizes, tuple(factor_of[a] for a in range(len(row_classes))),
        tuple(factor_of[len(row_classes) + b] for b in range(len(col_classes))),
        tuple(bool(cc[0] < k) for cc in col_classes), row_slot, row_label, col_slot, col_label,
    )  # fmt: skip
    index = found.parameter_of()
    for p in range(index.max() + 1):
        if len(np.unique(values[index == p])) > 1:
            return trivial(n, d, k)
    return found


def _diagonal(block: np.ndarray) -> np.ndarray | None:
    """For a square block a I + b 11^T (a != b) up to a permutation of its columns: the
    column holding each row's a; None for any other block."""
    size = block.shape[0]
    if block.shape[1] != size:
        return None
    forms, counts = np.unique(block, return_counts=True)
    if len(forms) != 2:
        return None
    for value, count in zip(forms, counts, strict=True):
        marked = block == value
        if count == size and (marked.sum(0) == 1).all() and (marked.sum(1) == 1).all():
            return np.argmax(marked, axis=1)
    return None


def symmetry_type(weights: np.ndarray, tol: float = 1e-5, k: int | None = None) -> str:
    """The block notation of W's isotropy (module docstring); k defaults to W's width."""
    weights = np.asarray(weights)
    return detect(weights, weights.shape[1] if k is None else k, tol).notation()
