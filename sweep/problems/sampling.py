"""The data a cell of networks on data trains on: a finite data set, sampled or given,
and its teacher.

Everything is drawn from the sweep seed, the teacher width k and the input dimension d,
never from the student width n or a run index: every run of a cell, and the cells of
different widths, see the same training set, so comparisons across widths are paired. The
training set, the test set, the label noise and a random teacher each have their own key.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ..config import Cell, ProblemSettings
from ..objectives import Network
from ..objectives.data import Data
from .teachers import stream_key, teacher_neurons

# Fold-in tags that separate the streams drawn from the root seed (and from the run keys);
# the teacher's is `teachers.TEACHER_STREAM`.
_TRAIN, _TEST, _NOISE = 1, 2, 3
_key = stream_key


def _inputs(problem, key, count, d):
    if problem.data == "gaussian":
        return jax.random.normal(key, (count, d), jnp.float64)
    return jax.random.uniform(key, (count, d), jnp.float64, -1.0, 1.0)


def _teach(problem, teacher, inputs):
    """The teacher's outputs: a plain network (unit output weights) with rows `teacher`."""
    k, d = teacher.shape
    return Network(n=k, d=d, alpha=problem.alpha).apply(teacher.reshape(-1), inputs)


def make(problem: ProblemSettings, cell: Cell, seed: int) -> Data:
    """The data set of one cell of a sweep of networks on data (its `[problem]` settings)."""
    k, d = cell.k, cell.d
    if problem.data == "points":
        inputs = jnp.asarray(np.asarray(problem.points, float).reshape(-1, 1))
        clean = jnp.asarray(np.asarray(problem.targets, float))
        teacher = None
    else:
        teacher = teacher_neurons(problem, k, d, seed)
        inputs = _inputs(problem, _key(seed, _TRAIN, k, d), problem.samples, d)
        clean = _teach(problem, teacher, inputs)
    noise = problem.label_noise * jax.random.normal(
        _key(seed, _NOISE, k, d), clean.shape, jnp.float64
    )
    if problem.data == "points":
        test = (inputs, clean)  # no distribution to draw from: the noiseless targets
    else:
        test_inputs = _inputs(problem, _key(seed, _TEST, k, d), problem.test_samples, d)
        test = (test_inputs, _teach(problem, teacher, test_inputs))
    return Data((inputs, clean + noise), test, teacher)
