"""Adaptive sampling (`sweep.target_halfwidth`): a cell's shards are its waves, trained in
order, and a cell stops once the 95% confidence sequence of its spurious rate
(`confidence.confidence_sequence`) over the waves done is at most the target half-width.

The decision after wave j reads only the rows of waves 0..j, which are the same whoever
trained them and whenever: a resumed sweep stops where an uninterrupted one would, and a
sweep with more seeds extends one with fewer run by run. A finished shard never changes,
so `Waves` reads each one's status column once and keeps its counts.
"""

import itertools
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ..confidence import confidence_sequence, halfwidth
from ..config import Config, shard_list
from ..config.shards import Shard
from ..outcomes import Status
from ..results import layout, progress


def adaptive(config: Config) -> bool:
    return config.target_halfwidth > 0


class Waves:
    """The stop rule of an adaptive sweep in `root`, with each finished shard's
    (spurious, runs) counted once."""

    def __init__(self, root: str | Path, config: Config):
        self.root, self.config = Path(root), config
        self.counts: dict[str, tuple[int, int]] = {}  # shard name -> (spurious, runs)

    def _counts(self, shard: Shard) -> tuple[int, int]:
        if shard.name not in self.counts:
            path = layout.shard_file(self.root, shard.name)
            status = pq.read_table(path, columns=["status"])["status"].to_pylist()
            spurious = sum(value == Status.SPURIOUS.value for value in status)
            self.counts[shard.name] = spurious, len(shard.runs)
        return self.counts[shard.name]

    def next_wave(self, shards: list[Shard]) -> tuple[Shard | None, list[Shard]]:
        """For one cell's shards (in run order): (the next wave to train or None, the
        shards the cell no longer needs)."""
        spurious = runs = 0
        for index, shard in enumerate(shards):
            if not layout.shard_done(self.root, shard.name):
                return shard, []
            more, size = self._counts(shard)
            spurious, runs = spurious + more, runs + size
            interval = confidence_sequence(spurious, runs)
            if halfwidth(interval, spurious / runs) <= self.config.target_halfwidth:
                return None, shards[index + 1 :]
        return None, []

    def unneeded(self, shards: list[Shard]) -> set[str]:
        """Names of the shards an adaptive sweep does not train (none for a fixed one)."""
        if not adaptive(self.config):
            return set()
        found = set()
        for _, cell_shards in itertools.groupby(shards, lambda shard: shard.cell):
            found |= {shard.name for shard in self.next_wave(list(cell_shards))[1]}
        return found


def shard_states(root: str | Path) -> pd.DataFrame:
    """`results.progress.shard_states`, with the waves an adaptive sweep did not need."""
    config = progress.sweep_config(root)
    return progress.shard_states(root, Waves(root, config).unneeded(shard_list(config)))
