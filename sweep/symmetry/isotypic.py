"""The Hessian of F at a fixed point of G, block by block: one small block per isotypic
component of the parameter space (Schur's lemma; Arjevani & Field).

G is a product of symmetric groups S_p (`structure.py`). R^{n x d} is a sum over pairs of
slots (row slot r, column slot c) of R^p (x) R^q, and each splits into irreducible
representations of G: for slots of different factors, (1 + V_f) (x) (1 + V_g) = trivial
+ V_f + V_g + V_f (x) V_g (V_f the standard representation of S_p, dimension p - 1); for
slots of one factor, R^p (x) R^p = 2 trivial + 3 V_f + [p-2, 2] + [p-2, 1, 1] (two V_f for
p = 2). Each *copy* of an irreducible U is the image of one fixed vector u of U (e.g.
e_0 - e_1 for V_f) under an embedding; H maps the copies' vectors x_a into their span,
H x_b = sum_a x_a B_ab, and the eigenvalues of H on the component are those of the small
matrix B, each repeated dim U times.

The copies are fixed by the subgroup K of G that fixes u's labels, so x_a^T H x_b is also
a second derivative of F restricted to Fix(K), which `reduced.py` computes at a cost that
does not depend on k (`coordinates` gives the copies in Fix(K)'s parameters): the proofs
enclose the blocks that way. No (n d) x (n d) matrix is ever formed.
"""

import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ..limits import FIX_FOR_SPECTRUM, MAX_MOVE, RUN_END_SYMMETRY
from ..objectives import KernelLoss, PopulationLoss, gaussian
from . import reduced
from .structure import Structure, detect


@dataclass(frozen=True, eq=False)
class Component:
    """One isotypic component: its name, the dimension of its irreducible representation
    (each eigenvalue of its block repeats that often), the labels its vector u marks
    (factor -> how many, from label 0) and the copies x_a, (m, n, d) integers."""

    name: str
    dimension: int
    marked: dict
    copies: np.ndarray


@dataclass(frozen=True)
class Block:
    component: str
    dimension: int
    eigenvalues: np.ndarray  # ascending, each of multiplicity `dimension`


def _factor_name(structure: Structure, f: int) -> str:
    p = structure.sizes[f]
    same = [g for g, q in enumerate(structure.sizes) if q == p]
    return f"S{p}" if len(same) == 1 else f"S{p}#{same.index(f) + 1}"


def components(structure: Structure) -> list[Component]:
    """Every isotypic component of R^{n x d} under the structure's group."""
    n, d = structure.shape
    rows, cols = np.array(structure.row_slots), np.array(structure.col_slots)
    row_factor, col_factor = rows[structure.row_slot], cols[structure.col_slot]
    labels = structure.row_label, structure.col_label

    def safe(f):  # labels of rows and columns of factor f, 0 elsewhere (masked out later)
        return [np.where(factor == f, label, 0) for factor, label in
                zip((row_factor, col_factor), labels, strict=True)]  # fmt: skip

    def mask(r, c):
        return (structure.row_slot == r)[:, None] & (structure.col_slot == c)[None, :]

    def vector(p, entries):
        u = np.zeros(p, int)
        for label, value in entries.items():
            u[label] = value
        return u

    pairs = [(r, c) for r in range(len(rows)) for c in range(len(cols))]
    parameter = structure.parameter_of()
    found = [Component("trivial", 1, {},
                       np.stack([parameter == e for e in range(parameter.max() + 1)]))]  # fmt: skip
    for f, p in enumerate(structure.sizes):
        if p < 2:
            continue
        name = _factor_name(structure, f)
        u = vector(p, {0: 1, 1: -1})
        rl, cl = safe(f)
        copies = []
        for r, c in pairs:
            both = mask(r, c)
            if rows[r] == f:
                copies.append(both * u[rl][:, None])
            if cols[c] == f:
                copies.append(both * u[cl][None, :])
            if rows[r] == f and cols[c] == f and p >= 3:
                copies.append(both * (rl[:, None] == cl[None, :]) * u[rl][:, None])
        found.append(Component(f"standard {name}", p - 1, {f: 2}, np.stack(copies)))
        if p >= 3:
            same = [(r, c) for r, c in pairs if rows[r] == f and cols[c] == f]
            turn = np.zeros((p, p), int)  # e01 - e10 + e12 - e21 + e20 - e02
            for a, b in ((0, 1), (1, 2), (2, 0)):
                turn[a, b], turn[b, a] = 1, -1
            if same:
                copies = np.stack([mask(r, c) * turn[rl][:, cl] for r, c in same])
                found.append(Component(f"[{p - 2},1,1] {name}", (p - 1) * (p - 2) // 2,
                                       {f: 3}, copies))  # fmt: skip
            if p >= 4 and same:
                pairs4 = np.zeros((p, p), int)  # {0,1} - {2,1} - {0,3} + {2,3}
                for (a, b), sign in (((0, 1), 1), ((2, 1), -1), ((0, 3), -1), ((2, 3), 1)):
                    pairs4[a, b] = pairs4[b, a] = sign
                copies = np.stack([mask(r, c) * pairs4[rl][:, cl] for r, c in same])
                found.append(Component(f"[{p - 2},2] {name}", p * (p - 3) // 2, {f: 4}, copies))
    for f, p in enumerate(structure.sizes):
        for g, q in enumerate(structure.sizes):
            if g <= f or p < 2 or q < 2:
                continue
            uf, ug = vector(p, {0: 1, 1: -1}), vector(q, {0: 1, 1: -1})
            (rf, cf), (rg, cg) = safe(f), safe(g)
            copies = []
            for r, c in pairs:
                if {rows[r], cols[c]} == {f, g}:
                    left = np.where(row_factor == f, uf[rf], ug[rg])
                    right = np.where(col_factor == f, uf[cf], ug[cg])
                    copies.append(mask(r, c) * left[:, None] * right[None, :])
            if copies:
                name = f"standard {_factor_name(structure, f)} ⊗ {_factor_name(structure, g)}"
                found.append(Component(name, (p - 1) * (q - 1), {f: 2, g: 2}, np.stack(copies)))
    assert sum(c.dimension * len(c.copies) for c in found) == n * d, "components miss a part"
    return found


def coordinates(component: Component, structure: Structure) -> tuple[Structure, np.ndarray]:
    """(K, C): the subgroup K fixing the component's vector, and the copies in the
    parameters of Fix(K), x_a = sum_e C[a, e] E_e (E_e the 0/1 basis of Fix(K))."""
    fixed = structure.split(component.marked)
    parameter = fixed.parameter_of().ravel()
    first = np.zeros(parameter.max() + 1, int)
    first[parameter[::-1]] = np.arange(len(parameter))[::-1]
    flat = component.copies.reshape(len(component.copies), -1)
    matrix = flat[:, first]
    assert np.array_equal(matrix[:, parameter], flat), "a copy is not fixed by K"
    return fixed, matrix.astype(float)


# Hessian-vector products per compiled call: a fixed batch, so one compile per (n, d).
PRODUCTS = 16


@functools.partial(jax.jit, static_argnames="objective")
def _products(weights, teacher, vectors, objective):
    operator = objective.hessian_operator(weights, teacher)
    return jax.vmap(operator)(vectors)


def spectrum(structure: Structure, weights: np.ndarray, kernel: Any = None) -> list[Block]:
    """The Hessian's distinct eigenvalues at the fixed point `weights`, one block per
    isotypic component (float64): B from M = X^T H X and S = X^T X, H X by Hessian-vector
    products (no dense Hessian). `proofs/symmetric.py` encloses the same blocks from the
    reduced loss of Fix(K) instead, at a cost that does not grow with k. `kernel`: another
    activation's (`objectives/kernels.py`), None for ReLU's analytic Hessian."""
    n, d = structure.shape
    objective = PopulationLoss(n=n, d=d) if kernel is None else KernelLoss(n, d, kernel)
    parts = components(structure)
    vectors = np.concatenate([c.copies for c in parts]).astype(float)
    padded = -(-len(vectors) // PRODUCTS) * PRODUCTS
    vectors = np.concatenate([vectors, np.zeros((padded - len(vectors), n, d))])
    with jax.enable_x64(True):
        teacher = gaussian.orthonormal_teacher(structure.k, d)
        products = np.concatenate([
            np.asarray(_products(jnp.asarray(weights, float), teacher,
                                 jnp.asarray(vectors[i : i + PRODUCTS]), objective))
            for i in range(0, padded, PRODUCTS)
        ])  # fmt: skip
    blocks, start = [], 0
    for component in parts:
        m = len(component.copies)
        x = component.copies.reshape(m, -1).astype(float)
        matrix = x @ products[start : start + m].reshape(m, -1).T
        values = scipy.linalg.eigh((matrix + matrix.T) / 2, x @ x.T, eigvals_only=True)
        blocks.append(Block(component.name, component.dimension, values))
        start += m
    return blocks


def expanded(blocks: list[Block]) -> np.ndarray:
    """Every eigenvalue with its multiplicity, ascending: the dense spectrum."""
    return np.sort(np.concatenate([np.repeat(b.eigenvalues, b.dimension) for b in blocks]))


def smallest(blocks: list[Block], tol: float = 1e-10) -> tuple[float, int, str]:
    """(smallest eigenvalue, its multiplicity, the component(s) it lies in)."""
    low = min(float(b.eigenvalues[0]) for b in blocks)
    where = [(b, int(np.sum(np.abs(b.eigenvalues - low) <= tol))) for b in blocks]
    where = [(b, count) for b, count in where if count]
    return low, sum(b.dimension * c for b, c in where), " + ".join(b.component for b, _ in where)


def index(blocks: list[Block], zero: float = 0.0) -> int:
    """The number of eigenvalues below -`zero`, with multiplicity."""
    return int(sum(b.dimension * np.sum(b.eigenvalues < -zero) for b in blocks))


def nullity(blocks: list[Block], zero: float) -> int:
    """The number of eigenvalues within `zero` of 0, with multiplicity."""
    return int(sum(b.dimension * np.sum(np.abs(b.eigenvalues) <= zero) for b in blocks))


def at_point(
    weights: np.ndarray, k: int, tol: float = RUN_END_SYMMETRY
) -> tuple[Structure, np.ndarray, list] | None:
    """(isotropy, point, blocks) of a point that gradient descent reached: its isotropy up
    to `tol`, then the symmetric critical point nearest to it (Newton on the reduced
    gradient), where the blocks are computed. None for the trivial group, when Newton
    moves the point by more than MAX_MOVE, or when a Fix(K) is larger than
    FIX_FOR_SPECTRUM (the jets' cost grows as its square)."""
    structure = detect(weights, k, tol)
    if structure.order_is_one:
        return None
    parts = components(structure)
    if max(len(structure.split(c.marked).parameters) for c in parts) > FIX_FOR_SPECTRUM:
        return None
    try:
        theta = reduced.polish(structure, structure.theta(weights))
    except np.linalg.LinAlgError:
        return None  # a singular Hessian on Fix(G): not an isolated point there
    point = structure.point(theta)
    if not np.max(np.abs(point - weights)) < MAX_MOVE:
        return None
    return structure, point, spectrum(structure, point)
