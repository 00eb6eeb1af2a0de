"""Finish calls: the finish programs run in fixed-size calls of one compiled shape
(`in_calls`), each split over the local devices (`over_runs`)."""

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

# Runs per device in one compiled call of a finish program (`in_calls`): one program per
# cell shape. XLA rounds some of a vmapped program's reductions differently for different
# batch sizes, so this also fixes a finish's arithmetic (on any number of devices).
RUNS_PER_CALL = 64


def finish_batch() -> int:
    """Runs per call of a finish program: RUNS_PER_CALL per local device."""
    return RUNS_PER_CALL * jax.local_device_count()


def in_calls(finish, weights: np.ndarray, *per_run: np.ndarray) -> tuple:
    """`finish(weights, *per_run)` (batched, jitted, returning a tuple of arrays with
    leading axis B) over any number of runs as host arrays, in calls of `finish_batch` runs
    (the last one padded with copies of its first run), so that one compiled size serves
    all."""
    parts, size = [], finish_batch()
    for start in range(0, len(weights), size):
        call = slice(start, start + size)
        count = len(weights[call])
        pad = np.r_[np.arange(count), np.zeros(size - count, int)]
        found = finish(weights[call][pad], *(x[call][pad] for x in per_run))
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
