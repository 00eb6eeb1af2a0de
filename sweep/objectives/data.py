"""What an objective is evaluated on: its data argument, and a cell's data record."""

from typing import Any, NamedTuple

import jax

# An objective's data argument: the teacher (k, d), or a data set (inputs (N, d), targets (N,)).
TrainData = jax.Array | tuple[jax.Array, jax.Array]


class Data(NamedTuple):
    train: Any  # the objective's data argument: the teacher (k, d), or (inputs, targets)
    test: Any  # (inputs, targets) of fresh points; None where the loss is a population loss
    teacher: Any  # (k, d) teacher neurons with unit output weights; None for given targets
