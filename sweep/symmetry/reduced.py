"""The closed-form loss restricted to a fixed-point space Fix(G), in its parameters.

A fixed point W = W(theta) of a product of symmetric groups (`structure.py`) has a few
distinct rows up to the group: F(W) = 1/2 sum_ij g(w_i, w_j) - sum_it g(w_i, e_t) + const
is a sum over *orbits* of pairs of rows (and of rows and teacher neurons), each term one
kernel evaluation times the orbit's size, and every inner product w_i . w_j a sum over
column slots of a few products of parameters times slot sizes. The cost depends on the
number of slots, not on k: a point at k = 100 costs what one at k = 6 costs.

The formula is written once (`loss`) against a small arithmetic interface
(`Arithmetic`). Its back ends:

- float64 numbers (`FloatArithmetic`): `value`;
- second-order jets (`jets.py`) of floats: `gradient`, `hessian` and `polish` (forward
  mode in NumPy: milliseconds, where XLA takes seconds to compile the unrolled formula),
  and of Arb balls in `proofs/symmetric.py`: enclosures of all three;
- JAX (`vector_loss`): the same terms, with every inner product a quadratic form in theta
  whose matrix is derived from `loss`'s own `_dot` by polarization (`_tables`), so that
  one compiled program serves every type of one shape; Newton from many starts
  (`newton`, vmapped by `fixed_points.py`) differentiates it with JAX.

Other activations (`objectives/kernels.py`, with the orthonormal teacher) take the JAX
form with their kernel in place of the arc-cosine one (`vector_loss(..., kernel)`): F is
the same sum over orbits, each term K(|w_i|^2, |w_j|^2, w_i . w_j); their `value`,
`gradient`, `hessian` and `polish` come from JAX autodiff of it.

`tests/symmetry/test_reduced.py` checks all three against autodiff of the full loss.
"""

import functools
import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from . import jets
from .structure import Structure, basis


class Arithmetic(Protocol):
    """What the formula needs besides + - * /: sqrt, the kernel and pi."""

    pi: Any

    def sqrt(self, x: Any) -> Any: ...

    def kernel(self, cos: Any) -> Any:
        """sqrt(1 - c^2) + (pi - arccos c) c = sin t + (pi - t) cos t."""


def _dot(signature: tuple, sizes: Any, theta: Any, r: int, s: int, same_label: bool) -> Any:
    """w_i . w_j for i in row slot r, j in row slot s (labels equal or not): a sum over
    column slots of products of parameters times slot sizes."""
    row_slots, col_slots, _, ones = signature
    where = _where(signature)

    def entry(row, c, form):
        return theta[where[row, c, form]]

    total = 0
    for c, g in enumerate(col_slots):
        q = sizes[g]
        mine, theirs = row_slots[r] == g, row_slots[s] == g
        if not mine and not theirs:
            total = total + q * entry(r, c, "const") * entry(s, c, "const")
            continue
        if mine != theirs:
            paired, other = (r, s) if mine else (s, r)
            row_sum = entry(paired, c, "diag")
            if not ones[g]:
                row_sum = row_sum + (q - 1) * entry(paired, c, "off")
            total = total + row_sum * entry(other, c, "const")
            continue
        a, b = entry(r, c, "diag"), entry(s, c, "diag")
        if ones[g]:
            total = total + a * b
            continue
        x, y = entry(r, c, "off"), entry(s, c, "off")
        if same_label:
            total = total + a * b + (q - 1) * x * y
        else:
            total = total + a * y + x * b + (q - 2) * x * y
    return total


@functools.cache
def _where(signature: tuple) -> dict:
    return {key: i for i, key in enumerate(basis(signature))}


@functools.cache
def plan(signature: tuple) -> tuple[list, list]:
    """The terms of F: pairs of rows (r, s, same_label, count), r == s with same_label
    the i = j terms g(w, w) = |w|^2 / 2; and rows against teacher neurons (r, parameter,
    count). A count (f, h, alpha, beta) is sizes[f] (alpha sizes[h] + beta): the size of
    the term's orbit."""
    row_slots, col_slots, teacher, ones = signature
    where = _where(signature)
    pairs = []
    for r, f in enumerate(row_slots):
        for s, h in enumerate(row_slots):
            if f != h:
                pairs.append((r, s, False, (f, h, 1, 0)))
                continue
            pairs.append((r, s, True, (f, f, 0, 1)))
            if not ones[f]:
                pairs.append((r, s, False, (f, f, 1, -1)))
    teachers = []
    for r, f in enumerate(row_slots):
        for c, g in enumerate(col_slots):
            if not teacher[c]:
                continue
            if f != g:
                teachers.append((r, where[r, c, "const"], (f, g, 1, 0)))
                continue
            teachers.append((r, where[r, c, "diag"], (f, f, 0, 1)))
            if not ones[f]:
                teachers.append((r, where[r, c, "off"], (f, f, 1, -1)))
    return pairs, teachers


def _count(sizes: Any, spec: tuple) -> Any:
    f, h, alpha, beta = spec
    return sizes[f] * (alpha * sizes[h] + beta)


def loss(signature: tuple, sizes: Any, k: Any, theta: Any, arithmetic: Arithmetic) -> Any:
    """F(W(theta)) for a structure with this signature and these factor sizes."""
    pairs, teachers = plan(signature)
    squares = [_dot(signature, sizes, theta, r, r, True) for r in range(len(signature[0]))]
    norms = [arithmetic.sqrt(x) for x in squares]
    own = 0
    for r, s, same_label, spec in pairs:
        if r == s and same_label:
            term = squares[r] * arithmetic.pi
        else:
            product = norms[r] * norms[s]
            cos = _dot(signature, sizes, theta, r, s, same_label) / product
            term = product * arithmetic.kernel(cos)
        own = own + _count(sizes, spec) * term
    cross = 0
    for r, parameter, spec in teachers:
        cross = cross + _count(sizes, spec) * norms[r] * arithmetic.kernel(
            theta[parameter] / norms[r]
        )
    constant = k / 4 + k * (k - 1) / (4 * arithmetic.pi)
    return (own / 2 - cross) / (2 * arithmetic.pi) + constant


@jax.custom_jvp
def _slope(cos):
    """d kernel / d cos = pi - arccos(c)."""
    return jnp.pi - jnp.arccos(cos)


@_slope.defjvp
def _slope_jvp(primals, tangents):
    (cos,), (dcos,) = primals, tangents
    gap = 1.0 - cos * cos
    # 1/sqrt(1 - c^2) blows up at parallel vectors, where the tangent of c vanishes to
    # the same order: the Hessian's limit there has no term from it (|p| = sin t).
    curvature = jnp.where(gap > 0, dcos / jnp.sqrt(jnp.where(gap > 0, gap, 1.0)), 0.0)
    return _slope(cos), curvature


@jax.custom_jvp
def _kernel(cos):
    return jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0)) + _slope(cos) * cos


@_kernel.defjvp
def _kernel_jvp(primals, tangents):
    (cos,), (dcos,) = primals, tangents
    return _kernel(cos), _slope(cos) * dcos


def _jet(structure: Structure, theta: np.ndarray, sizes: Any = None) -> jets.Jet:
    point = jets.variables(np.asarray(theta, float))
    arithmetic = jets.JetArithmetic(jets.FloatScalars)
    sizes = structure.sizes if sizes is None else sizes
    return loss(structure.signature, sizes, structure.k, point, arithmetic)


@functools.partial(jax.jit, static_argnames=("signature", "kernel", "order"))
def _derivative(theta, sizes, k, signature, kernel, order):
    """F, its gradient or its Hessian (`order` 0, 1, 2) for another activation's kernel."""
    f = functools.partial(vector_loss, sizes=sizes, k=k, signature=signature, kernel=kernel)
    return (f, jax.grad(f), jax.hessian(f))[order](theta)


def _by_kernel(structure: Structure, theta: np.ndarray, kernel: Any, order: int,
               sizes: Any = None) -> np.ndarray:  # fmt: skip
    sizes = structure.sizes if sizes is None else sizes
    with jax.enable_x64(True):
        return np.asarray(_derivative(jnp.asarray(theta, float), jnp.asarray(sizes, float),
                                      float(structure.k), structure.signature, kernel,
                                      order))  # fmt: skip


def value(structure: Structure, theta: np.ndarray, kernel: Any = None) -> float:
    """F at the fixed point W(theta) (float64); `kernel`: another activation's
    (`objectives/kernels.py`), None for ReLU."""
    if kernel is not None:
        return float(_by_kernel(structure, theta, kernel, 0))
    return float(loss(structure.signature, structure.sizes, structure.k,
                      np.asarray(theta, float), FloatArithmetic))  # fmt: skip


def gradient(structure: Structure, theta: np.ndarray, kernel: Any = None) -> np.ndarray:
    """dF/dtheta: the gradient of F projected onto Fix(G), in the parameters."""
    if kernel is not None:
        return _by_kernel(structure, theta, kernel, 1)
    return np.asarray(_jet(structure, theta).grad)


def hessian(structure: Structure, theta: np.ndarray, kernel: Any = None,
            sizes: Any = None) -> np.ndarray:  # fmt: skip
    """d^2 F/dtheta^2 = E^T H E, E the 0/1 basis of Fix(G) (one column per parameter).
    Forward-mode jets in NumPy for ReLU: milliseconds, where compiling the same unrolled
    formula with XLA takes seconds per structure (paid once per signature for other
    kernels). `sizes`: other block sizes than the structure's, real numbers allowed (the
    formula is a polynomial in them; `families.py` follows points in real k)."""
    if kernel is not None:
        return _by_kernel(structure, theta, kernel, 2, sizes)
    return np.asarray(_jet(structure, theta, sizes).hess)


def polish(
    structure: Structure, theta: np.ndarray, steps: int = 3, kernel: Any = None
) -> np.ndarray:
    """Newton steps on the reduced gradient: the symmetric critical point near theta
    (raises numpy.linalg.LinAlgError where the reduced Hessian is singular)."""
    theta = np.asarray(theta, float)
    for _ in range(steps):
        step = hessian(structure, theta, kernel), gradient(structure, theta, kernel)
        theta = theta - np.linalg.solve(*step)
    return theta


class FloatArithmetic:
    """`Arithmetic` on float64 numbers (NumPy)."""

    pi = math.pi
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def kernel(cos):
        cos = np.clip(cos, -1.0, 1.0)
        return np.sqrt(np.maximum(1.0 - cos * cos, 0.0)) + (math.pi - np.arccos(cos)) * cos


@functools.cache
def _tables(signature: tuple) -> dict:
    """The formula of `loss` as arrays, for a vectorized float64 version under JAX: every
    inner product is a quadratic form theta^T Q theta whose matrix is affine in the
    sizes, Q = A + sum_g sizes[g] B_g (found by polarization of `_dot`)."""
    pairs, teachers = plan(signature)
    rows, m, factors = len(signature[0]), len(basis(signature)), len(signature[3])
    keys = [(r, r, True) for r in range(rows)]
    keys += [(r, s, same) for r, s, same, _ in pairs if (r, s, same) not in keys]
    eye = np.eye(m)

    def form(key, sizes):
        value = np.array([[_dot(signature, sizes, eye[i] + eye[j], *key) for j in range(m)]
                          for i in range(m)])  # fmt: skip
        single = np.diag(value) / 4  # dot(2 e_i) = 4 dot(e_i)
        return (value - single[:, None] - single[None, :]) / 2

    zero = np.zeros(factors)
    base = np.array([form(key, zero) for key in keys])
    slopes = np.array([[form(key, eye_g) - base[i] for eye_g in np.eye(factors)]
                       for i, key in enumerate(keys)])  # fmt: skip
    specs = np.array([spec for *_, spec in pairs] + [spec for *_, spec in teachers])
    return {
        "base": base,
        "slopes": slopes,
        "specs": specs,
        "split": len(pairs),
        "pair_rows": np.array([[r, s] for r, s, _, _ in pairs]),
        "pair_keys": np.array([keys.index((r, s, same)) for r, s, same, _ in pairs]),
        "own": np.array([r == s and same for r, s, same, _ in pairs]),
        "teacher_rows": np.array([r for r, _, _ in teachers], int),
        "teacher_entries": np.array([p for _, p, _ in teachers], int),
    }


def vector_loss(
    theta: jax.Array, sizes: jax.Array, k: float, signature: tuple, kernel: Any = None
) -> jax.Array:
    """`loss` under JAX, vectorized over its terms (float64 under jax.enable_x64);
    `kernel`: another activation's (`objectives/kernels.py`) in place of ReLU's."""
    t = _tables(signature)
    forms = t["base"] + jnp.einsum("g,kgij->kij", sizes, t["slopes"])
    dots = jnp.einsum("kij,i,j->k", forms, theta, theta)
    f, h, alpha, beta = (t["specs"][:, i] for i in range(4))
    counts = sizes[f] * (alpha * sizes[h] + beta)
    if kernel is not None:
        return _kernel_loss(t, counts, dots, theta, k, kernel)
    norms = jnp.sqrt(dots[: len(signature[0])])
    r, s = t["pair_rows"][:, 0], t["pair_rows"][:, 1]
    tr = t["teacher_rows"]
    product = norms[r] * norms[s]
    cos = jnp.where(t["own"], 0.0, dots[t["pair_keys"]] / product)
    terms = jnp.where(t["own"], dots[r] * jnp.pi, product * _kernel(jnp.clip(cos, -1.0, 1.0)))
    own = jnp.sum(counts[: t["split"]] * terms)
    cos = jnp.clip(theta[t["teacher_entries"]] / norms[tr], -1.0, 1.0)
    cross = jnp.sum(counts[t["split"] :] * norms[tr] * _kernel(cos))
    constant = k / 4 + k * (k - 1) / (4 * jnp.pi)
    return (own / 2 - cross) / (2 * jnp.pi) + constant


def _kernel_loss(t: dict, counts, dots, theta, k, kernel) -> jax.Array:
    """The same sum of orbit terms with E[s(w.x) s(v.x)] = kernel(|w|^2, |v|^2, w.v), the
    teacher's rows orthonormal."""
    r, s, own = t["pair_rows"][:, 0], t["pair_rows"][:, 1], t["own"]
    # A row with itself takes the kernel's diagonal; the pairs formula gets an orthogonal
    # stand-in there (as in `kernels.self_matrix`), where its derivatives may not exist.
    pairs = kernel.pairs(jnp.where(own, 1.0, dots[r]), jnp.where(own, 1.0, dots[s]),
                         jnp.where(own, 0.0, dots[t["pair_keys"]]))  # fmt: skip
    terms = jnp.where(own, kernel.diagonal(dots[r]), pairs)
    student = jnp.sum(counts[: t["split"]] * terms)
    tr = t["teacher_rows"]
    cross = jnp.sum(counts[t["split"] :] * kernel.pairs(dots[tr], 1.0, theta[t["teacher_entries"]]))
    constant = k / 2 * kernel.diagonal(1.0) + k * (k - 1) / 2 * kernel.pairs(1.0, 1.0, 0.0)
    return student / 2 - cross + constant


@functools.partial(jax.jit, static_argnames=("signature", "steps", "kernel"))
def newton(theta, sizes, k, signature, steps: int = 60, kernel: Any = None):
    """Newton's method on the reduced gradient from one start (vmap it over many),
    halving a step until |grad| decreases (at most 30 times); returns (theta, |grad|)."""
    loss_at = functools.partial(vector_loss, sizes=sizes, k=k, signature=signature, kernel=kernel)
    grad, hess = jax.grad(loss_at), jax.hessian(loss_at)

    def norm(t):
        return jnp.linalg.norm(grad(t))

    def step(_, state):
        t, size = state
        move = jnp.linalg.solve(hess(t), grad(t))

        def shorter(carry):
            alpha, _ = carry
            return alpha / 2, norm(t - alpha / 2 * move)

        def longer(carry):
            alpha, found = carry
            return (found >= size) & (alpha > 2.0**-30) & jnp.isfinite(size)

        alpha, found = jax.lax.while_loop(longer, shorter, (2.0, jnp.inf))
        better = jnp.isfinite(found) & (found < size)
        new = jnp.where(better, t - alpha * move, t - move)
        return new, jnp.where(better, found, norm(new))

    return jax.lax.fori_loop(0, steps, step, (theta, norm(theta)))
