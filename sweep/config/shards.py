"""A sweep as a deterministic list of shards: (cell, contiguous range of run indices).

Any worker can run any shard, and a shard's file is written whole or not at all, so the
shard list is also the unit of resume.
"""

from dataclasses import dataclass

from .grid import Cell, cells
from .schema import Config


@dataclass(frozen=True)
class Shard:
    cell: Cell
    start: int  # first run index
    stop: int  # one past the last run index

    @property
    def runs(self) -> range:
        return range(self.start, self.stop)

    @property
    def name(self) -> str:
        return f"{self.cell.label}-r{self.start:07d}-{self.stop:07d}"


def shard_list(config: Config) -> list[Shard]:
    """Every shard of the sweep, cell by cell, runs in order."""
    return [
        Shard(cell, start, min(start + config.shard_size, config.seeds))
        for cell in cells(config)
        for start in range(0, config.seeds, config.shard_size)
    ]
