"""sweep: seed sweeps over teacher-student ReLU networks, batched in JAX."""

import jax

# The 1e-12 gradient criterion and the Hessian checks need float64 throughout.
jax.config.update("jax_enable_x64", True)

from .report import summary as summary  # noqa: E402
from .results import load as load  # noqa: E402

__version__ = "0.1.0"
