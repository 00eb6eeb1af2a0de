"""Bookkeeping of the engine's batch: which run each slot holds, the queue of pending
runs, and how many steps a segment takes."""

import collections
from collections.abc import Iterable

import numpy as np


class Slots:
    """Which run each slot of the batch holds (-1: none), and the queue of pending runs:
    a run index (to start) or a (run, host row) pair (to resume as it left)."""

    def __init__(self, runs: Iterable, batch: int):
        self.queue = collections.deque(r if isinstance(r, tuple) else int(r) for r in runs)
        self.run = np.full(batch, -1)

    def refill(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Pending runs into free slots: (mask of slots of fresh runs, run per slot, and
        [(slot, row)] of resumed ones)."""
        free = np.flatnonzero(self.run < 0)[: len(self.queue)]
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


class SegmentLength:
    """Steps per segment: fixed if configured, else a small fraction of a typical run.

    A finished run idles in its slot until the segment ends, about half a segment on
    average, so segments are kept to ~1/32 of the median run length seen so far in the
    cell; the host round trip between segments costs about as much as one step of a
    large batch, so they are not made shorter than 16 steps.
    """

    def __init__(self, fixed: int):
        self.fixed = fixed
        self.length = fixed or 32
        self.seen = []

    def observe(self, steps: np.ndarray) -> None:
        if self.fixed:
            return
        self.seen.extend(int(s) for s in steps)
        if self.seen:  # empty while only paused runs have come back
            self.length = int(np.clip(np.median(self.seen) // 32, 16, 2048))
