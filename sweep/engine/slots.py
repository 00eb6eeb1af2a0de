"""Bookkeeping of the engine's batch: which run each slot holds, the queue of pending
runs, and how many steps a segment takes."""

import collections
import math
from collections.abc import Iterable

import numpy as np


class Slots:
    """Which run each slot of the batch holds (-1: none), and the queue of pending runs:
    a run index (to start) or a (run, host row) pair (to resume as it left)."""

    def __init__(self, runs: Iterable, batch: int, devices: int = 1):
        self.queue = collections.deque(r if isinstance(r, tuple) else int(r) for r in runs)
        self.run = np.full(batch, -1)
        self.devices = devices  # the batch is split into this many equal slices

    def refill(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Pending runs into free slots: (mask of slots of fresh runs, run per slot, and
        [(slot, row)] of resumed ones)."""
        free = self._free_in_turn(len(self.queue))
        fresh = np.zeros(len(self.run), bool)
        runs = np.zeros(len(self.run), np.int64)
        resumed = []
        for slot in free:
            entry = self.queue.popleft()
            if isinstance(entry, tuple):
                entry, row = entry
                resumed.append((slot, row))
            else:
                fresh[slot] = True
            runs[slot] = self.run[slot] = entry
        return fresh, runs, resumed

    def _free_in_turn(self, count: int) -> list[int]:
        """Up to `count` free slots in the order runs take them: each on the device that
        holds the fewest runs, at the front of its slice (so runs fill few chunks)."""
        busy = (self.run >= 0).reshape(self.devices, -1)
        load = busy.sum(axis=1)
        free = [list(np.flatnonzero(~row) + d * busy.shape[1]) for d, row in enumerate(busy)]
        order = []
        while len(order) < count and any(free):
            device = min((d for d in range(self.devices) if free[d]), key=lambda d: load[d])
            order.append(free[device].pop(0))
            load[device] += 1
        return order

    def chunks_in_use(self, chunk: int) -> int:
        """Chunks of `chunk` slots that hold at least one run."""
        return int(np.sum(np.any(self.run.reshape(-1, chunk) >= 0, axis=1)))

    def regroup(self, size: int) -> np.ndarray:
        """Move the runs into a batch of `size` slots, spread evenly over the devices and
        at the front of each device's slice, so that they fill as few chunks as they can.
        Returns, for each new slot, the old slot whose state it takes (an idle, frozen one
        for a slot left empty)."""
        active = np.flatnonzero(self.run >= 0)
        order = np.arange(active.size)
        target = order % self.devices * (size // self.devices) + order // self.devices
        index = np.full(size, np.flatnonzero(self.run < 0)[0])
        index[target] = active
        run = np.full(size, -1)
        run[target] = self.run[active]
        self.run = run
        return index


def fewest_chunks(count: int, devices: int, chunk: int) -> int:
    """Chunks `count` runs fill when spread evenly over the devices (`Slots.regroup`)."""
    per_device = [count // devices + (d < count % devices) for d in range(devices)]
    return sum(-(-runs // chunk) for runs in per_device)


def ladder(count: int, devices: int) -> int:
    """The batch size for `count` runs: devices x a power of two, at least `count`."""
    return devices * 2 ** max(0, math.ceil(math.log2(max(count, 1) / devices)))


def first_batch_size(
    count: int, devices: int, limit: int, chunk: int, platform: str, fixed: bool = False
) -> int:
    """The batch a cell of `count` runs starts with, at most `limit` (`fixed`: the config
    sets it, and the cell takes exactly that, or what the ladder needs if fewer).

    On a CPU at most a quarter of the cell is in flight: slots are refilled only while
    runs are queued, so the tail (queue empty, slots emptying) stays short; and at least
    a chunk per device, so that every run has the same arithmetic. A GPU or TPU takes the
    whole cell at once: a step of a few thousand runs costs it about what a step of a few
    hundred does, and its tail is compacted into smaller batches (`smaller`)."""
    batch = min(limit, ladder(count, devices))
    if fixed:
        return batch
    if platform == "cpu":
        batch = min(batch, ladder(-(-count // 4), devices))
    return min(max(batch, devices * chunk), limit)


def smaller(batch: int, count: int, devices: int) -> int:
    """The batch to compact `count` runs into: the smallest of batch / 4^j (a multiple
    of the device count) that holds them. Steps of 4 rather than 2 halve the batch sizes
    a cell compiles for, at the price of at most 4x idle slots in the tail."""
    while batch % (4 * devices) == 0 and batch // 4 >= count:
        batch //= 4
    return batch


# Segments of 1/8 of the median run, at least 32 steps: measured on the bench workload
# (k = 8, 12, 16, 512 runs each, warm cache) against 1/32 and 16 steps, 12.1 s against
# 14.0 s, every row the same; 1/4 or 64 steps were slower again.
RUN_FRACTION = 8
SHORTEST = 32
LONGEST = 2048
FIRST = 32  # steps per segment before any run has ended or trained long
# Batches compacted in a cell's tail (no CPU chunks: `programs.chunk_runs`) change the
# shape a run trains in, and with it the last bits of its arithmetic, at a time that
# depends on where segments end. They keep the lengths their results were measured with.
COMPACTED = (32, 16)  # (run fraction, shortest)


class SegmentLength:
    """Steps per segment: fixed if configured, else a fraction of a typical run.

    A finished run idles in its slot until the segment ends, about half a segment on
    average, while every segment costs a host round trip (about 0.5 ms: a dispatch, one
    read of the batch, the refill), so segments are kept to 1/`fraction` of the median
    run length seen so far in the cell, and no shorter than `shortest` steps. Before any
    run has ended, the median is at least the steps every running run has survived
    (`survived`): a cell whose runs all train to a late first checkpoint does not take
    those steps a few dozen at a time.
    """

    def __init__(self, fixed: int, fraction: int = RUN_FRACTION, shortest: int = SHORTEST):
        self.fixed = fixed
        self.fraction, self.shortest = fraction, shortest
        self.length = fixed or FIRST
        self.seen = []

    def _clip(self, steps) -> int:
        return int(np.clip(steps, self.shortest, LONGEST))

    def observe(self, steps: np.ndarray) -> None:
        if self.fixed:
            return
        self.seen.extend(int(s) for s in steps)
        if self.seen:  # empty while only paused runs have come back
            self.length = self._clip(np.median(self.seen) // self.fraction)

    def survived(self, steps: np.ndarray) -> None:
        """The steps of the runs still training, while none has ended."""
        if self.fixed or self.seen or not len(steps):
            return
        self.length = self._clip(max(self.length, int(np.min(steps)) // self.fraction))
