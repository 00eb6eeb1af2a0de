"""Compiled programs: `jax.jit` with quick-compile options, compiles ahead of a first call
on a background thread, and the release of a cell's programs."""

import concurrent.futures
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

# XLA's CPU backend spends most of a finish program's compile time optimizing code that
# runs a few dozen times per cell: at level 0 it compiles in half the time and runs about
# 1.6x slower, a net gain on a cold cache. Other backends keep their defaults.
_QUICK_COMPILE = {"cpu": {"xla_backend_optimization_level": 0}}


_COMPILED_AHEAD = []  # the `ahead` programs of every `quick_to_compile` function


def programs_compiled_ahead() -> int:
    """The most programs one `quick_to_compile` function holds compiled ahead."""
    return max((len(programs) for programs in _COMPILED_AHEAD), default=0)


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
