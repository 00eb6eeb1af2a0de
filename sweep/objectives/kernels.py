"""E[s(a.x) s(b.x)] for x ~ N(0, I_d): the kernel of an activation s, as a function of the
Gram entries |a|^2, |b|^2 and a.b (the pair (a.x, b.x) is a centred Gaussian with that
covariance, so nothing else matters).

Closed forms where they exist:

- `relu`: Cho & Saul's arc-cosine kernel (sqrt(|a|^2|b|^2 - c^2) + (pi - t) c) / (2 pi);
- `erf`, meaning erf(z / sqrt 2): (2/pi) arcsin(c / sqrt((1 + |a|^2)(1 + |b|^2)))
  (Saad & Solla 1995, the soft committee machine);
- `normal_cdf`, Phi(z) = (1 + erf(z / sqrt 2)) / 2: 1/4 plus a quarter of erf's;
- `linear`: c; `quadratic`, z^2: |a|^2 |b|^2 + 2 c^2.

Any other activation (tanh, sigmoid, softplus, gelu, silu, or a user's own JAX function)
by a product rule in two dimensions (the trapezoid rule, `product_rule`), u1 = |a| z1,
u2 = (c/|a|) z1 + sqrt(|b|^2 - c^2/|a|^2) z2 (`Quadrature`). Its derivatives do not go through that
parameterization, which has no derivative at parallel a and b: Price's theorem gives them
as kernels of the derivatives of s (dE/dc = E[s'(u1) s'(u2)], dE/d|a|^2 = E[s''(u1) s(u2)]
/ 2), evaluated by the same rule, to any order (`benchmarks/quadrature_error.py` measures
the error against mpmath).

A kernel is hashable (a static argument of jitted code) and offers `pairs(sa, sb, c)`,
elementwise with broadcasting, and `diagonal(s)` = E[s(sqrt(s) z)^2], each with
derivatives of every order that stay finite where no closed form breaks down.
"""

import functools
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

_TWO_PI = 2.0 * math.pi
# Products of Gauss-Hermite weights below this (relative to the largest) are left out:
# their nodes lie beyond 11 standard deviations, where no activation here grows enough to
# matter at 1e-16.
_PRUNE = 1e-30


def _safe(positive: jax.Array, x: jax.Array) -> jax.Array:
    """x where `positive`, else 1: a denominator that keeps autodiff finite."""
    return jnp.where(positive, x, 1.0)


@jax.custom_jvp
def _arc_slope(sa, sb, c):
    """dE/dc of the arc-cosine kernel: (pi - t) / (2 pi), t the angle."""
    norms = jnp.sqrt(sa * sb)
    cos = jnp.where(norms > 0, c / _safe(norms > 0, norms), 1.0)
    return (jnp.pi - jnp.arccos(jnp.clip(cos, -1.0, 1.0))) / _TWO_PI


@_arc_slope.defjvp
def _arc_slope_jvp(primals, tangents):
    sa, sb, c = primals
    dsa, dsb, dc = tangents
    # d(pi - t)/dc = 1 / sqrt(sa sb - c^2), which blows up at parallel vectors, where the
    # tangent of c vanishes to the same order: the Hessian's limit has no term from it.
    gap = sa * sb - c * c
    inverse = jnp.where(gap > 0, 1.0 / jnp.sqrt(_safe(gap > 0, gap)), 0.0)
    ratio_a = jnp.where(sa > 0, c / _safe(sa > 0, sa), 0.0)
    ratio_b = jnp.where(sb > 0, c / _safe(sb > 0, sb), 0.0)
    change = inverse * (dc - 0.5 * ratio_a * dsa - 0.5 * ratio_b * dsb) / _TWO_PI
    return _arc_slope(sa, sb, c), change


@jax.custom_jvp
def _arc_cosine(sa, sb, c):
    gap = jnp.maximum(sa * sb - c * c, 0.0)
    return jnp.sqrt(gap) / _TWO_PI + _arc_slope(sa, sb, c) * c


@_arc_cosine.defjvp
def _arc_cosine_jvp(primals, tangents):
    sa, sb, c = primals
    dsa, dsb, dc = tangents
    gap = jnp.maximum(sa * sb - c * c, 0.0)
    root = jnp.sqrt(gap)
    # dE/dsa = sqrt(sa sb - c^2) / (4 pi sa): E[delta(u1) relu(u2)] / 2.
    along_a = jnp.where(sa > 0, root / _safe(sa > 0, sa), 0.0)
    along_b = jnp.where(sb > 0, root / _safe(sb > 0, sb), 0.0)
    change = _arc_slope(sa, sb, c) * dc + (along_a * dsa + along_b * dsb) / (2 * _TWO_PI)
    return _arc_cosine(sa, sb, c), change


@dataclass(frozen=True)
class Relu:
    """The arc-cosine kernel (Cho & Saul 2009), in the Gram entries."""

    name: str = "relu"
    zero_at_zero = True
    homogeneous = True  # s(t z) = t s(z) for t > 0: parallel neurons act as one

    def pairs(self, sa, sb, c):
        return _arc_cosine(sa, sb, c)

    def diagonal(self, s):
        return 0.5 * s


@dataclass(frozen=True)
class LeakyRelu:
    """max(z, alpha z): alpha c + (1 - alpha)^2 times the arc-cosine kernel."""

    alpha: float
    name: str = "leaky_relu"
    zero_at_zero = True
    homogeneous = True

    def pairs(self, sa, sb, c):
        return self.alpha * c + (1 - self.alpha) ** 2 * _arc_cosine(sa, sb, c)

    def diagonal(self, s):
        return self.alpha * s + (1 - self.alpha) ** 2 * 0.5 * s


class _Arcsine:
    """offset + scale arcsin(c / sqrt((1 + |a|^2)(1 + |b|^2))); `arcsine` = (scale,
    offset) is also what `arcsine.py` trains with."""

    arcsine: tuple[float, float]

    def pairs(self, sa, sb, c):
        scale, offset = self.arcsine
        return offset + scale * jnp.arcsin(c / jnp.sqrt((1.0 + sa) * (1.0 + sb)))

    def diagonal(self, s):
        scale, offset = self.arcsine
        return offset + scale * jnp.arcsin(s / (1.0 + s))


@dataclass(frozen=True)
class Erf(_Arcsine):
    """s(z) = erf(z / sqrt 2) (Saad & Solla's soft committee machine)."""

    name: str = "erf"
    zero_at_zero = True
    arcsine = (2.0 / math.pi, 0.0)


@dataclass(frozen=True)
class NormalCdf(_Arcsine):
    """s(z) = Phi(z) = (1 + erf(z / sqrt 2)) / 2."""

    name: str = "normal_cdf"
    zero_at_zero = False
    arcsine = (1.0 / _TWO_PI, 0.25)


@dataclass(frozen=True)
class Linear:
    name: str = "linear"
    zero_at_zero = True

    def pairs(self, sa, sb, c):
        return c + 0.0 * (sa + sb)

    def diagonal(self, s):
        return s


@dataclass(frozen=True)
class Quadratic:
    """s(z) = z^2: E[(a.x)^2 (b.x)^2] = |a|^2 |b|^2 + 2 (a.b)^2 (Isserlis)."""

    name: str = "quadratic"
    zero_at_zero = True

    def pairs(self, sa, sb, c):
        return sa * sb + 2.0 * c * c

    def diagonal(self, s):
        return 3.0 * s * s


# The trapezoid rule's reach in each variable: the Gaussian weight beyond 8.6 standard
# deviations is below 1e-16 of its peak.
REACH = 8.6


@functools.cache
def product_rule(nodes: int, rule: str = "trapezoid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A two-dimensional rule for E[f(z1, z2)], z ~ N(0, I_2): (z1, z2, weight).

    "trapezoid": `nodes` equally spaced points per axis on [-REACH, REACH], kept on the
    disc of that radius. For an integrand analytic in a strip |Im z| < tau the error falls
    like exp(-2 pi tau / h) in the spacing h (Trefethen & Weideman 2014), and s(|a| z) of
    tanh or sigmoid is analytic for |Im z| < pi / (2 |a|): this is what reaches 1e-12 with
    the fewest nodes (`benchmarks/quadrature_error.py`). "hermite": the Gauss-Hermite
    product rule of `nodes` points per axis, its negligible corners left out, which spends
    most of its nodes far in the tails and converges far more slowly here.
    """
    if rule == "hermite":
        line, weights = np.polynomial.hermite_e.hermegauss(nodes)
        weights = weights / math.sqrt(2 * math.pi)
    else:
        line = np.linspace(-REACH, REACH, nodes)
        weights = np.exp(-line * line / 2) / math.sqrt(2 * math.pi) * (line[1] - line[0])
    z1, z2 = np.meshgrid(line, line, indexing="ij")
    w = np.outer(weights, weights)
    keep = w > _PRUNE * w.max()
    if rule != "hermite":
        keep &= z1 * z1 + z2 * z2 <= REACH * REACH
    return z1[keep], z2[keep], w[keep]


@functools.cache
def derivative(fn: Callable) -> Callable:
    """The derivative of an elementwise function, elementwise (one per function, so that
    kernels built from it stay equal and hashable)."""

    def slope(z):
        return jax.jvp(fn, (z,), (jnp.ones_like(z),))[1]

    return slope


def _gaussian_pair(f, g, rule, sa, sb, c):
    """E[f(u1) g(u2)] by a product rule, (u1, u2) ~ N(0, [[sa, c], [c, sb]])."""
    z1, z2, w = (jnp.asarray(x) for x in product_rule(*rule))
    sa, sb, c = jnp.broadcast_arrays(sa, sb, c)
    root_a = jnp.sqrt(sa)
    along = jnp.where(sa > 0, c / _safe(sa > 0, root_a), 0.0)
    across = jnp.sqrt(jnp.maximum(sb - along * along, 0.0))
    u1 = root_a[..., None] * z1
    u2 = along[..., None] * z1 + across[..., None] * z2
    return jnp.sum(f(u1) * g(u2) * w, axis=-1)


@functools.cache
def expectation(f: Callable, g: Callable, rule: tuple[int, str]) -> Callable:
    """(sa, sb, c) -> E[f(u1) g(u2)], differentiable to any order by Price's theorem."""

    @jax.custom_jvp
    def value(sa, sb, c):
        return _gaussian_pair(f, g, rule, sa, sb, c)

    @value.defjvp
    def value_jvp(primals, tangents):
        (sa, sb, c), (dsa, dsb, dc) = primals, tangents
        df, dg = derivative(f), derivative(g)
        change = (
            expectation(df, dg, rule)(sa, sb, c) * dc
            + 0.5 * expectation(derivative(df), g, rule)(sa, sb, c) * dsa
            + 0.5 * expectation(f, derivative(dg), rule)(sa, sb, c) * dsb
        )
        return value(sa, sb, c), change

    return value


@dataclass(frozen=True)
class Quadrature:
    """The kernel of any elementwise JAX activation, by a two-dimensional quadrature of
    `nodes` points per axis (`product_rule`)."""

    name: str
    fn: Callable = field(compare=True)
    nodes: int = 80
    rule: str = "trapezoid"

    @property
    def zero_at_zero(self) -> bool:
        return abs(float(self.fn(jnp.zeros(())))) == 0.0

    def size(self) -> int:
        """Nodes of the two-dimensional rule."""
        return len(product_rule(self.nodes, self.rule)[0])

    def pairs(self, sa, sb, c):
        return expectation(self.fn, self.fn, (self.nodes, self.rule))(sa, sb, c)

    def diagonal(self, s):
        return self.pairs(s, s, s)


def _gelu(z):
    return jax.nn.gelu(z, approximate=False)


def _softplus(z):
    return jnp.logaddexp(z, 0.0)


ACTIVATIONS: dict[str, Callable] = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": _softplus,
    "gelu": _gelu,
    "silu": jax.nn.silu,
}
CLOSED_FORMS = {kind.name: kind for kind in (Relu(), Erf(), NormalCdf(), Linear(), Quadratic())}
NAMES = (*CLOSED_FORMS, "leaky_relu", *ACTIVATIONS)


def import_activation(path: str) -> Callable:
    """The function a dotted path names: "package.module.function" or "module:function"."""
    module, _, name = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not module:
        raise ValueError(f"{path!r} is not a dotted path module.function")
    found = getattr(importlib.import_module(module), name, None)
    if not callable(found):
        raise ValueError(f"{path!r} names no function")
    return found


def path_of(fn: Callable) -> str:
    """The dotted path a config names a user's function by (module.qualname), checked to
    lead back to this very function, so that a resumed sweep or a cluster task finds it."""
    path = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    try:
        found = import_activation(path)
    except (ImportError, ValueError):
        found = None
    if found is not fn:
        raise ValueError(
            f"{fn!r} is not importable as {path}: define the activation at the top"
            " level of a module (or of the script or notebook that runs the sweep)"
        )
    return path


def kernel(activation: str | Callable, nodes: int = 80, alpha: float = 0.0):
    """The kernel of an activation: a name (`NAMES`, leaky_relu with slope `alpha`), a
    dotted import path to a JAX function, or the function itself."""
    if activation == "leaky_relu":
        return LeakyRelu(alpha)
    if callable(activation):
        return Quadrature(getattr(activation, "__name__", "custom"), activation, nodes)
    if activation in CLOSED_FORMS:
        return CLOSED_FORMS[activation]
    if activation in ACTIVATIONS:
        return Quadrature(activation, ACTIVATIONS[activation], nodes)
    return Quadrature(activation, import_activation(activation), nodes)


def matrix(kernel, a: jax.Array, b: jax.Array) -> jax.Array:
    """E[s(a_i.x) s(b_j.x)] for the rows of a (n, d) and b (m, d), shape (n, m)."""
    sa = jnp.sum(a * a, axis=-1)[:, None]
    sb = jnp.sum(b * b, axis=-1)[None, :]
    return kernel.pairs(sa, sb, a @ b.T)


def self_matrix(kernel, a: jax.Array) -> jax.Array:
    """`matrix(kernel, a, a)` with the diagonal from `kernel.diagonal`: the pairs formula
    is never evaluated (nor differentiated) at a row paired with itself."""
    n = a.shape[0]
    eye = jnp.eye(n, dtype=bool)
    sq = jnp.sum(a * a, axis=-1)
    gram = a @ a.T
    # Off the diagonal only: a row against itself sits where no derivative of the pairs
    # formula exists (t = 0 for ReLU); a harmless orthogonal stand-in takes its place.
    sa = jnp.where(eye, 1.0, sq[:, None])
    sb = jnp.where(eye, 1.0, sq[None, :])
    c = jnp.where(eye, 0.0, gram)
    return jnp.where(eye, kernel.diagonal(sq)[:, None] * eye, kernel.pairs(sa, sb, c))
