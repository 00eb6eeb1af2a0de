"""sweep: seed sweeps over teacher-student ReLU networks, batched in JAX.

Importing sweep changes nothing in the process: JAX's float64 flag, XLA_FLAGS, the
compilation cache and the matplotlib backend stay as they are. `sweep.run` and the CLI
set what a sweep needs (`sweep/runtime.py`).
"""

from .api import certify as certify
from .api import replay as replay
from .api import run as run
from .reports import summary as summary
from .results.runs_table import load as load
from .version import __version__ as __version__
