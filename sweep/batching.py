"""How runs are grouped for the programs that train and finish them.

- Training on a CPU: each device trains its slice of the batch a chunk of runs at a time
  (`chunk_runs`).
- The finish programs: fixed-size calls of one compiled shape (`in_chunks`), split over
  the devices (`over_runs`), compiled with options that favour a short compile over
  fast code (`quick_to_compile`).
"""

import concurrent.futures
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

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
    floats = getattr(objective, "chunk_floats", lambda: None)()
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


# Runs per device in one compiled call of a finish program (`in_chunks`): one program per
# cell shape. XLA rounds some of a vmapped program's reductions differently for different
# batch sizes, so this also fixes a finish's arithmetic (on any number of devices).
CHUNK = 64


def finish_batch() -> int:
    """Runs per call of a finish program: CHUNK per local device."""
    return CHUNK * jax.local_device_count()


def in_chunks(finish, weights: np.ndarray, *per_run: np.ndarray) -> tuple:
    """`finish(weights, *per_run)` (batched, jitted, returning a tuple of arrays with
    leading axis B) over any number of runs as host arrays, in chunks of `finish_batch`
    (the last one padded with copies of its first run), so that one compiled size serves
    all."""
    parts, size = [], finish_batch()
    for start in range(0, len(weights), size):
        chunk = slice(start, start + size)
        count = len(weights[chunk])
        pad = np.r_[np.arange(count), np.zeros(size - count, int)]
        found = finish(weights[chunk][pad], *(x[chunk][pad] for x in per_run))
        parts.append([np.asarray(field)[:count] for field in found])
    return tuple(np.concatenate(field) for field in zip(*parts, strict=True))


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), ("runs",))


def over_runs(one: Callable, per_run: tuple, shared: tuple = ()) -> Any:
    """`one(*run, *shared)` for every run (vmapped), inside a jitted finish program:
    `per_run` holds arrays with a leading run axis, `shared` arrays common to all runs.
    The runs are split over the local devices (padded to a multiple of their count), so
    that every core works on them."""
    devices = jax.local_devices()
    batch = jax.tree.leaves(per_run)[0].shape[0]
    padded = -(-batch // len(devices)) * len(devices)
    if padded > batch:
        index = np.r_[np.arange(batch), np.zeros(padded - batch, int)]
        per_run = jax.tree.map(lambda x: x[index], per_run)
    # No collectives: each device's loops are its own (check_vma would ask every constant
    # in a loop's carry to be marked as varying over the devices).
    found = jax.shard_map(
        lambda per_run, shared: jax.vmap(lambda *run: one(*run, *shared))(*per_run),
        mesh=_mesh(tuple(devices)), in_specs=(P("runs"), P()), out_specs=P("runs"),
        check_vma=False,
    )(per_run, shared)  # fmt: skip
    return found if padded == batch else jax.tree.map(lambda x: x[:batch], found)


# XLA's CPU backend spends most of a finish program's compile time optimizing code that
# runs a few dozen times per cell: at level 0 it compiles in half the time and runs about
# 1.6x slower, a net gain on a cold cache. Other backends keep their defaults.
_QUICK_COMPILE = {"cpu": {"xla_backend_optimization_level": 0}}


_COMPILED_AHEAD = []  # the `ahead` programs of every `quick_to_compile` function


def release_programs() -> None:
    """Drop every compiled program this process holds (JAX's in-memory caches, the
    programs compiled ahead): a cell's programs serve only its own shapes, and a process
    that runs many cells would otherwise keep them all (about 130 MB per cell, measured
    on a small deep sweep). Programs still needed come back from the persistent cache or
    are compiled again. JAX's caches are the whole process's: only for processes that exist to run
    sweeps (`RunOptions.release_programs`)."""
    for programs in _COMPILED_AHEAD:
        concurrent.futures.wait(programs.values())  # none compiles while caches clear
        programs.clear()
    jax.clear_caches()


def quick_to_compile(static_argnames: tuple[str, ...], every_cell: bool = False):
    """`jax.jit` for the finish programs, with the platform's quick-compile options
    (chosen at the first call, when the platform is known).

    The wrapped function also has `ahead(*args, **kwargs)`: compile it for those arguments
    (arrays or `jax.ShapeDtypeStruct`s) on a background thread, so that the compile
    overlaps training; a later call with the same shapes waits for it and runs it.

    `every_cell`: the program's shapes do not depend on a cell's (only on a batch size),
    so its programs are kept through `release_programs` instead of being traced, lowered
    and loaded again for every cell."""

    def wrap(function):
        signature = inspect.signature(function)

        @functools.cache
        def compiled(platform):
            options = _QUICK_COMPILE.get(platform)
            return jax.jit(function, static_argnames=static_argnames, compiler_options=options)

        def split(args, kwargs):
            """The arguments by name, and the key of their shapes and static values."""
            bound = signature.bind(*args, **kwargs).arguments
            dynamic = {k: v for k, v in bound.items() if k not in static_argnames}
            static = tuple((k, v) for k, v in bound.items() if k in static_argnames)
            shapes = tuple(_shape_and_type(x) for x in jax.tree.leaves(dynamic))
            return bound, dynamic, (jax.tree.structure(dynamic), shapes, static)

        ahead_of_time = {}  # key -> Future of the compiled program
        _COMPILED_AHEAD.append(ahead_of_time)
        kept = {}  # key -> compiled program, with every_cell

        @functools.wraps(function)
        def call(*args, **kwargs):
            bound, dynamic, key = split(args, kwargs)
            future = ahead_of_time.get(key)
            if future is not None and future.exception() is None:
                return future.result()(**dynamic)
            jitted = compiled(jax.devices()[0].platform)
            if not every_cell:
                return jitted(**bound)
            if key not in kept:
                kept[key] = jitted.lower(**bound).compile()
            return kept[key](**dynamic)

        def ahead(*args, **kwargs) -> None:
            bound, _, key = split(args, kwargs)
            if key not in ahead_of_time:
                jitted = compiled(jax.devices()[0].platform)
                ahead_of_time[key] = _compiler().submit(lambda: jitted.lower(**bound).compile())

        call.ahead = ahead
        return call

    return wrap


def _shape_and_type(x) -> tuple:
    """An argument's shape and dtype, for arrays, scalars and `jax.ShapeDtypeStruct`s."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape), np.dtype(x.dtype)
    return (), np.dtype(jnp.result_type(x))


@functools.cache
def _compiler() -> concurrent.futures.ThreadPoolExecutor:
    """The thread that compiles programs ahead of their first call (XLA compiles on one
    core and releases the GIL, so it overlaps the training on the others)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="compile")
