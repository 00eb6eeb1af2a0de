"""Ball arithmetic helpers shared by every proof: Arb's precision, outward rounding to
floats, midpoints, Gershgorin counts of eigenvalues, and Krawczyk's test.

Floats only choose where to look (a preconditioner, approximate eigenvectors); every
inequality a proof rests on is decided on Arb balls here.
"""

import contextlib
from collections.abc import Iterator

import numpy as np
from flint import arb, arb_mat, ctx


@contextlib.contextmanager
def precision(bits: int) -> Iterator[None]:
    """Arb's working precision inside, the caller's after (it is process-wide)."""
    saved = ctx.prec
    ctx.prec = bits
    try:
        yield
    finally:
        ctx.prec = saved


def upper(x: arb) -> float:
    """A float >= every point of x (outward rounding to 53 bits)."""
    return float(x.upper().mid()) + abs(float(x.upper().mid())) * 2**-52 + 2**-1074


def lower(x: arb) -> float:
    """A float <= every point of x."""
    return -upper(-x)


def midpoints(entries: list) -> list[float]:
    """The balls' midpoints as floats."""
    return [float(x.mid()) for x in entries]


def mid_matrix(matrix: arb_mat) -> np.ndarray:
    """The midpoints of a square ball matrix, as a float array."""
    n = matrix.nrows()
    return np.array([[float(matrix[i, j].mid()) for j in range(n)] for i in range(n)])


def identity(size: int) -> arb_mat:
    """The exact identity matrix."""
    return arb_mat([[int(a == b) for b in range(size)] for a in range(size)])


def is_finite(matrix: arb_mat) -> bool:
    """Every entry a finite ball (a division by a ball holding 0 gives an infinite one)."""
    return all(matrix[i, j].is_finite() for i in range(matrix.nrows())
               for j in range(matrix.ncols()))  # fmt: skip


def row_radius(block: arb_mat) -> arb:
    """The largest sum of the entries' radii over the rows of a square block."""
    size = block.nrows()
    return max((sum((arb(block[a, b].rad()) for b in range(size)), arb(0))
                for a in range(size)), key=upper)  # fmt: skip


def count_below(middle: arb_mat, vectors: arb_mat, shift: float) -> int | None:
    """The number of eigenvalues of the symmetric `middle` below `shift`, or None if the
    Gershgorin discs of the congruence V^T (middle - shift I) V do not decide it (Sylvester's
    law of inertia: V is nonsingular when every disc excludes 0)."""
    size = middle.nrows()
    congruent = vectors.transpose() * (middle - identity(size) * arb(shift)) * vectors
    count = 0
    for i in range(size):
        off = sum((abs(congruent[i, j]) for j in range(size) if j != i), arb(0))
        centre = congruent[i, i]
        if (centre - off) > 0:
            continue
        if (centre + off) < 0:
            count += 1
            continue
        return None
    return count


def krawczyk(gradient: arb_mat, jacobian: arb_mat, radius: float) -> tuple[bool, float]:
    """Krawczyk's test for a zero of a map g on the box X = c + [-r, r]^m: with
    g(c) = `gradient` (m, 1), an enclosure of its Jacobian over X, and Y = mid(J)^-1,
    K(X) - c = -Y g(c) + (I - Y J(X)) [-r, r]^m. Returns (K(X) lies strictly inside X:
    X holds exactly one zero, the largest |K(X) - c|)."""
    m = jacobian.nrows()
    y = arb_mat(np.linalg.inv(mid_matrix(jacobian)).tolist())
    spread = arb_mat(m, 1, [arb(0, radius)] * m)
    image = -(y * gradient) + (identity(m) - y * jacobian) * spread
    worst = max(upper(abs(image[i, 0])) for i in range(m))
    return worst < radius, worst
