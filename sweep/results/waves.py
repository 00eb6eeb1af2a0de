"""Adaptive sampling (`sweep.target_halfwidth`): a cell's shards are its waves, trained in
order, and a cell stops once the 95% confidence sequence of its spurious rate
(`confidence.confidence_sequence`) over the waves done is at most the target half-width.

The decision after wave j reads only the rows of waves 0..j, which are the same whoever
trained them and whenever: a resumed sweep stops where an uninterrupted one would, and a
sweep with more seeds extends one with fewer run by run.
"""

import itertools
from pathlib import Path

import pyarrow.parquet as pq

from ..confidence import confidence_sequence, halfwidth
from ..config import Config
from ..config.shards import Shard
from ..outcomes import Status
from . import layout


def adaptive(config: Config) -> bool:
    return config.target_halfwidth > 0


def _spurious(root: Path, shard: Shard) -> int:
    status = pq.read_table(layout.shard_file(root, shard.name), columns=["status"])["status"]
    return sum(value == Status.SPURIOUS.value for value in status.to_pylist())


def cell_waves(root: str | Path, config: Config, shards: list[Shard]) -> tuple:
    """For one cell's shards (in run order): (the next wave to train or None, the shards
    the cell no longer needs)."""
    spurious = runs = 0
    for index, shard in enumerate(shards):
        if not layout.shard_done(root, shard.name):
            return shard, []
        spurious += _spurious(Path(root), shard)
        runs += len(shard.runs)
        if halfwidth(confidence_sequence(spurious, runs)) <= config.target_halfwidth:
            return None, shards[index + 1 :]
    return None, []


def unneeded(root: str | Path, config: Config, shards: list[Shard]) -> set[str]:
    """Names of the shards an adaptive sweep does not train (none for a fixed one)."""
    if not adaptive(config):
        return set()
    found = set()
    for _, cell_shards in itertools.groupby(shards, lambda shard: shard.cell):
        found |= {shard.name for shard in cell_waves(root, config, list(cell_shards))[1]}
    return found
