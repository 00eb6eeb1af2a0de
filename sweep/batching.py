"""How the finish programs run over many runs: in fixed-size chunks of one compiled
shape, compiled with options that favour a short compile over fast code."""

import functools

import jax
import numpy as np

# Runs per compiled call of a batched finish: one program per cell shape.
CHUNK = 64


def in_chunks(finish, weights: np.ndarray, *per_run: np.ndarray) -> tuple:
    """`finish(weights, *per_run)` (batched, jitted, returning a tuple of arrays with
    leading axis B) over any number of runs as host arrays, in chunks of CHUNK (the last
    one padded with copies of its first run), so that one compiled size serves all."""
    parts = []
    for start in range(0, len(weights), CHUNK):
        chunk = slice(start, start + CHUNK)
        size = len(weights[chunk])
        pad = np.r_[np.arange(size), np.zeros(CHUNK - size, int)]
        found = finish(weights[chunk][pad], *(x[chunk][pad] for x in per_run))
        parts.append([np.asarray(field)[:size] for field in found])
    return tuple(np.concatenate(field) for field in zip(*parts, strict=True))


# XLA's CPU backend spends most of a finish program's compile time optimizing code that
# runs a few dozen times per cell: at level 0 it compiles in half the time and runs about
# 1.6x slower, a net gain on a cold cache. Other backends keep their defaults.
_QUICK_COMPILE = {"cpu": {"xla_backend_optimization_level": 0}}


def quick_to_compile(static_argnames: tuple[str, ...]):
    """`jax.jit` for the finish programs, with the platform's quick-compile options
    (chosen at the first call, when the platform is known)."""

    def wrap(function):
        @functools.cache
        def compiled(platform):
            options = _QUICK_COMPILE.get(platform)
            return jax.jit(function, static_argnames=static_argnames, compiler_options=options)

        @functools.wraps(function)
        def call(*args, **kwargs):
            return compiled(jax.devices()[0].platform)(*args, **kwargs)

        return call

    return wrap
