"""Points and polishes shared by tests: known critical points of the closed-form loss."""

import jax
import numpy as np

from sweep.objectives import gaussian


def spurious_point_k6():
    """The k = n = 6 spurious minimum of Safran & Shamir (2018), to 6 decimals."""
    w = np.full((6, 6), -0.050413)
    w[:, 0] = 0.308011
    w[np.arange(1, 6), np.arange(1, 6)] = 0.986704
    w[0] = [-0.601512] + [0.224516] * 5
    return w


def polish(weights, teacher, steps=4000, step_size=5 / 6):
    """Plain GD to polish a point given to 6 decimals into the minimum it approximates."""
    step = jax.jit(lambda w: w - step_size * gaussian.grad(w, teacher))
    for _ in range(steps):
        weights = step(weights)
    return weights


def newton(weights, k, steps=30):
    """A float64 Newton polish onto the nearby critical point."""
    teacher = gaussian.orthonormal_teacher(k)
    w = np.asarray(weights, float)
    for _ in range(steps):
        step = np.linalg.solve(gaussian.hessian(w, teacher), np.ravel(gaussian.grad(w, teacher)))
        w = w - step.reshape(w.shape)
    return w


def family(a, b, c, d, e):
    """Type [1, 5] at k = 6: W11 = a, W1j = b, Wi1 = c, Wii = d, Wij = e (i, j >= 2)."""
    w = np.full((6, 6), e)
    w[0, :], w[:, 0], w[0, 0] = b, c, a
    w[np.arange(1, 6), np.arange(1, 6)] = d
    return newton(w, 6)


def permuted(weights, seed):
    """The point with its rows and columns in a random order."""
    rng = np.random.default_rng(seed)
    n, d = weights.shape
    return weights[rng.permutation(n)][:, rng.permutation(d)]


def block_point(sizes, extra_rows=0, seed=0):
    """A point of type `sizes` (a I + b 11^T on the diagonal blocks, constants elsewhere)
    with `extra_rows` neurons of their own, all values distinct."""
    rng = np.random.default_rng(seed)
    k = sum(sizes)
    edges = np.cumsum([0, *sizes])
    w = np.empty((k + extra_rows, k))
    for a in range(len(sizes)):
        for b in range(len(sizes)):
            w[edges[a] : edges[a + 1], edges[b] : edges[b + 1]] = rng.uniform(-0.3, 0.3)
        block = slice(edges[a], edges[a + 1])
        w[block, block] += np.eye(sizes[a]) * rng.uniform(0.5, 1.0)
    for r in range(extra_rows):
        for b in range(len(sizes)):
            w[k + r, edges[b] : edges[b + 1]] = rng.uniform(-0.3, 0.3)
    return w


def arctan(z):
    """A user's own activation (named in configs by its dotted path, helpers.arctan)."""
    return jax.numpy.arctan(z)
