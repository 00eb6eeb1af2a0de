"""How runs are laid out for the compiled programs that train and finish them.

- `chunks.py`: training on a CPU, each device trains its slice of the batch a *chunk* of
  runs at a time.
- `calls.py`: the finish programs run in *calls* of a fixed number of runs per device,
  split over the local devices.
- `compile.py`: `jax.jit` with quick-compile options, compiles ahead of time, and the
  release of a cell's programs.
"""

from .calls import RUNS_PER_CALL as RUNS_PER_CALL
from .calls import finish_batch as finish_batch
from .calls import in_calls as in_calls
from .calls import over_runs as over_runs
from .chunks import chunk_runs as chunk_runs
from .chunks import chunk_size as chunk_size
from .chunks import join as join
from .chunks import split as split
from .compile import quick_to_compile as quick_to_compile
from .compile import release_programs as release_programs
