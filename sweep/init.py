"""Initializers and per-run keys.

Run r of the cell (k, n, d) always starts from the key
``fold_in(fold_in(fold_in(fold_in(key(seed), k), n), d), r)``, so its result never depends
on batch size, slot, device count, shard or host. The key does not depend on the init
scale or the optimizer: two sweeps that differ only there start from the same directions,
which makes their comparison paired.
"""

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float


def run_key(seed: int, k: int, n: int, d: int, run: int) -> Array:
    """The PRNG key of one run (all arguments may be traced integers)."""
    key = jax.random.key(seed)
    for value in (k, n, d, run):
        key = jax.random.fold_in(key, value)
    return key


def initial_weights(
    key: Array, n: int, d: int, scale: float, dtype: DTypeLike = jnp.float64
) -> Float[Array, "n d"]:
    """Weights with i.i.d. N(0, scale^2) entries, shape (n, d).

    Xavier normal (Safran & Shamir's protocol) is scale = 1/sqrt(d), He normal sqrt(2/d).
    """
    return scale * jax.random.normal(key, (n, d), dtype=dtype)
