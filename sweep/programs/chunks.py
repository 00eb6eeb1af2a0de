"""Training chunks: on a CPU, each device trains its slice of the batch a chunk of runs
at a time (`chunk_runs`)."""

import math
from typing import Any

import jax

# A CPU device trains its slice of the batch a chunk of runs at a time, each chunk small
# enough for the core's caches (about CHUNK_FLOATS of the objective's `chunk_floats` per
# chunk, at most MAX_CHUNK runs; 4 measured faster end to end than 8 or 16): a step's
# intermediates then stay in cache, and a chunk whose runs have all stopped costs nothing.
# XLA rounds some reductions differently for different array shapes, so the chunk size,
# which depends only on the objective, also makes a run's arithmetic the same in every
# batch of at least one chunk per device.
CHUNK_FLOATS = 4096
MAX_CHUNK = 4


def chunk_runs(objective: Any, platform: str) -> int:
    """Runs per chunk on a device of `platform` for an objective: a power of two on CPUs,
    0 (the device's whole slice at once) on GPUs and TPUs, which want the widest batch,
    and for objectives without `chunk_floats`."""
    floats = objective.chunk_floats()
    if platform != "cpu" or floats is None:
        return 0
    runs = max(1, min(MAX_CHUNK, CHUNK_FLOATS // max(floats, 1)))
    return 1 << (runs.bit_length() - 1)


def split(tree: Any, size: int) -> Any:
    """Leaves (B, ...) -> (B / size, size, ...): the chunks of a device's slice."""
    return jax.tree.map(lambda x: x.reshape(x.shape[0] // size, size, *x.shape[1:]), tree)


def join(tree: Any) -> Any:
    """The inverse of `split`."""
    return jax.tree.map(lambda x: x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]), tree)


def chunk_size(batch: int, chunk: int) -> int:
    """The chunk a device with `batch` runs trains in, for a `chunk_runs` of `chunk`."""
    return math.gcd(batch, chunk) if chunk else batch
