"""Initializers and per-run keys.

Run r of the cell (k, n, d) always starts from the key
``fold_in(fold_in(fold_in(fold_in(key(seed), k), n), d), r)``, so its result never depends
on batch size, slot, device count, shard or host. The key does not depend on the init
scale or the optimizer: two sweeps that differ only there start from the same directions,
which makes their comparison paired.

An initial point is drawn by `jax.random.normal` (`Normal`), which hashes its key into
raw bits and turns them into floats. The two halves can also run apart: `record_bits`
keeps the bits of each draw an init makes (integer work alone, exact under any compiler
settings), and `replay_bits` gives them back to the same init as the very same floats
(`normal_from_bits`). Hashing is most of what XLA takes to compile a start, so the engine
compiles it quickly on its own (`starts.py`).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike
from jaxtyping import Array, Float

# A sampler with `jax.random.normal`'s signature (key, shape, dtype): what inits draw with.
Normal = Callable[[Array, tuple[int, ...], DTypeLike], Array]


def run_key(seed: int, k: int, n: int, d: int, run: int) -> Array:
    """The PRNG key of one run (all arguments may be traced integers)."""
    key = jax.random.key(seed)
    for value in (k, n, d, run):
        key = jax.random.fold_in(key, value)
    return key


def initial_weights(
    key: Array,
    n: int,
    d: int,
    scale: float,
    dtype: DTypeLike = jnp.float64,
    normal: Normal = jax.random.normal,
) -> Float[Array, "n d"]:
    """Weights with i.i.d. N(0, scale^2) entries, shape (n, d).

    Xavier normal (Safran & Shamir's protocol) is scale = 1/sqrt(d), He normal sqrt(2/d).
    """
    return scale * normal(key, (n, d), dtype)


def _bits_dtype(dtype: DTypeLike) -> np.dtype:
    """The unsigned integer type of `jax.random.normal`'s raw bits for a float type."""
    width = jnp.finfo(dtype).bits
    if width not in (16, 32, 64):
        raise ValueError(f"no normal draws from raw bits for {np.dtype(dtype)}")
    return np.dtype(f"uint{width}")


def normal_from_bits(bits: Array, dtype: DTypeLike) -> Array:
    """The normal draw `jax.random.normal(key, shape, dtype)` makes from its raw bits
    `jax.random.bits(key, shape, uint of dtype's width)`, bit for bit: the mantissa gives
    a uniform in (-1, 1), then sqrt(2) erfinv. The same operations as JAX's own (its
    `_normal_real` and `_uniform`, followed step by step;
    tests/objectives/test_initializers.py holds them to it)."""
    dtype = np.dtype(dtype)
    finfo = jnp.finfo(dtype)
    low = jnp.asarray(np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype))
    high = jnp.asarray(np.array(1.0, dtype))
    mantissa = jax.lax.shift_right_logical(bits, jnp.array(finfo.bits - finfo.nmant, bits.dtype))
    one = jnp.asarray(np.array(1.0, dtype).view(bits.dtype), dtype=bits.dtype)
    floats = jax.lax.bitcast_convert_type(jax.lax.bitwise_or(mantissa, one), dtype)
    floats = floats - jnp.array(1.0, dtype)
    uniform = jax.lax.max(low, floats * (high - low) + low)
    return jax.lax.mul(np.array(np.sqrt(2), dtype), jax.lax.erf_inv(uniform))


def record_bits(found: list) -> Normal:
    """A sampler that appends the raw bits of each draw to `found` and returns zeros: an
    init run with it does the hashing of its draws and no float work that is kept."""

    def normal(key, shape, dtype=jnp.float64):
        found.append(jax.random.bits(key, shape, _bits_dtype(dtype)))
        return jnp.zeros(shape, dtype)

    return normal


def replay_bits(found: list) -> Normal:
    """A sampler that turns the recorded bits (`record_bits`), in order, into the draws
    `jax.random.normal` would have made; its keys go unused."""
    draws = iter(found)

    def normal(key, shape, dtype=jnp.float64):
        bits = next(draws)
        if bits.shape != tuple(shape) or bits.dtype != _bits_dtype(dtype):
            raise ValueError(f"recorded bits {bits.dtype}{bits.shape} for a draw of {shape}")
        return normal_from_bits(bits, dtype)

    return normal
