"""What a sweep needs from the process, set by the entry points and never on import.

A sweep trains in float64 (the 1e-12 gradient criterion and the Hessian checks need it),
wants one JAX CPU device per core (XLA runs a step's small operations on one thread per
device), and keeps compiled programs on disk (a cell shape then compiles once per
machine). `import sweep` changes none of this:

- `prepare_process()` is for processes that exist to run sweeps: the CLI and a SLURM
  task. It sets all three for the rest of the process.
- `sweep_settings()` is the context `sweep.run()` works in: float64 and the compilation
  cache inside, the caller's settings restored after. It also asks for one CPU device per
  core, which can only happen before JAX has started: where JAX already runs in the
  process, the sweep uses the devices it has and says so.
- `one_blas_thread()` is the context of the finishes on data (`problems/dataset.py`):
  NumPy's and SciPy's BLAS on one thread inside, the process's setting after.

Environment: SWEEP_CPU_DEVICES (a positive integer) picks the CPU device count,
SWEEP_JAX_CACHE the cache folder (default ~/.cache/sweep/jax; empty turns it off).
"""

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator

import jax
from threadpoolctl import ThreadpoolController

_DEVICE_FLAG = "xla_force_host_platform_device_count"


def cpu_cores() -> int:
    """Cores this process may use, or SWEEP_CPU_DEVICES when that is a positive integer."""
    wanted = os.environ.get("SWEEP_CPU_DEVICES", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def jax_started() -> bool:
    """Whether JAX has created its backends (its device list is then fixed)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a JAX without the module: assume it has
        return True
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return started() if started else bool(getattr(xla_bridge, "_backends", True))


def use_every_core(log: Callable[[str], None] | None = None) -> None:
    """One JAX CPU device per core, if JAX has not started and XLA_FLAGS does not choose.

    Only the CPU platform is affected (GPUs and TPUs are untouched). XLA_FLAGS is restored
    once JAX has read it, so child processes see the caller's environment.
    """
    flags = os.environ.get("XLA_FLAGS")
    if _DEVICE_FLAG in (flags or ""):
        return
    if jax_started():
        devices = jax.local_devices()
        if devices[0].platform == "cpu" and len(devices) < cpu_cores() and log is not None:
            log(
                f"sweep: JAX was already started in this process; using its {len(devices)} "
                f"CPU device(s), not one per core ({cpu_cores()}): call sweep.run before "
                f"other JAX work, or set XLA_FLAGS=--{_DEVICE_FLAG}={cpu_cores()}"
            )
        return
    os.environ["XLA_FLAGS"] = f"{flags or ''} --{_DEVICE_FLAG}={cpu_cores()}".strip()
    try:
        jax.local_devices()  # reads XLA_FLAGS now
    finally:
        if flags is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = flags


def _cache_folder() -> str | None:
    default = os.path.join(os.path.expanduser("~"), ".cache", "sweep", "jax")
    folder = os.environ.get("SWEEP_JAX_CACHE", default)
    if not folder:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile every time
    return folder


def _sweep_config() -> dict:
    """The JAX settings of a sweep: float64, and every compiled program kept on disk (each
    batch size of the engine's ladder costs ~0.5 s of compilation per cell shape)."""
    settings = {"jax_enable_x64": True}
    folder = _cache_folder()
    if folder is not None:
        settings.update(
            jax_compilation_cache_dir=folder,
            jax_persistent_cache_min_compile_time_secs=0.0,
            jax_persistent_cache_min_entry_size_bytes=0,
        )
    return settings


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def prepare_process() -> None:
    """Set up this whole process for sweeps (the CLI, SLURM tasks)."""
    use_every_core(log=_warn)
    for name, value in _sweep_config().items():
        jax.config.update(name, value)


@contextlib.contextmanager
def sweep_settings(log: Callable[[str], None] = _warn) -> Iterator[None]:
    """Float64 and the compilation cache inside, the caller's JAX settings after."""
    use_every_core(log=log)
    settings = _sweep_config()
    saved = {name: getattr(jax.config, name) for name in settings}
    try:
        for name, value in settings.items():
            jax.config.update(name, value)
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)


@functools.cache
def _blas() -> ThreadpoolController:
    # The controller sees the BLAS libraries loaded when it is made: SciPy's own, which
    # the finishes on data use and import only when they run, must be loaded first.
    import scipy.linalg  # noqa: F401

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """NumPy's and SciPy's BLAS on one thread inside, as many as before after.

    For the finishes on data: thousands of small solves (matrices of ~100 rows, least
    squares, eigendecompositions) between jitted calls. BLAS threads gain nothing on
    matrices that small, and their spinning competes with XLA's threads for the cores.
    Measured on two cores, every row the same bit for bit: `deep_students --k 5 --n k+2
    --seeds 40` 126.4 s against 99.8 s on one thread, `--k 4 --seeds 20` 75.4 s against
    65.2 s. It also makes a finish's arithmetic independent of the machine's core count.
    Not for the closed form's finishes: their LAPACK calls inside XLA run on this BLAS
    too, and there the thread count changed results (`--k 19 --n k+1`: steps and end
    points of some of the 1000 runs differ on one thread), with no gain in time."""
    with _blas().limit(limits=1, user_api="blas"):
        yield
