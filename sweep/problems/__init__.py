"""Problem kinds, one module each, behind one interface (`base.Problem`): the closed-form
population loss (`population.py`) and networks on a data set (`dataset.py`, its data from
`sampling.py`). A kind owns its data, objective, finish, classification and proofs."""

from ..config import Cell, Config
from ..config.grid import cell_config
from .base import Finish as Finish
from .base import Objective as Objective
from .base import Problem as Problem
from .dataset import DataSet as DataSet
from .population import Population as Population

KINDS: dict[str, type[Problem]] = {kind.kind: kind for kind in (Population, DataSet)}


def for_cell(config: Config, cell: Cell) -> Problem:
    """The problem of one cell of a sweep, of the kind its config names; the problem's
    config is the cell's own (the sweep's, with the cell's `[grid]` axis values)."""
    config = cell_config(config, cell)
    return KINDS[config.problem.kind](config, cell)
