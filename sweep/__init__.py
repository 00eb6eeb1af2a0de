"""sweep: seed sweeps over teacher-student ReLU networks, batched in JAX."""

import os


def _one_cpu_device_per_core():
    """Expose every core this process may use as its own JAX CPU device.

    XLA runs the small per-run operations of a training step on one thread per device,
    so without this a CPU sweep uses a single core. It only affects the CPU platform
    (GPU runs are untouched), and only if JAX is not initialized yet and the user has not
    set the flag. SWEEP_CPU_DEVICES (a positive integer) chooses the count.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wanted = os.environ.get("SWEEP_CPU_DEVICES", "")
    count = int(wanted) if wanted.isdigit() and int(wanted) > 0 else (cores or 1)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


_one_cpu_device_per_core()

import jax  # noqa: E402

# The 1e-12 gradient criterion and the Hessian checks need float64 throughout.
jax.config.update("jax_enable_x64", True)


def _persistent_compilation_cache():
    """Keep compiled programs on disk: a cell shape compiles once per machine, not per run.

    Each batch size of the engine's ladder costs ~0.5 s of XLA compilation per cell shape;
    resumed sweeps, cluster tasks and repeated sweeps then start at once. The folder is
    SWEEP_JAX_CACHE (empty: off), default ~/.cache/sweep/jax.
    """
    default = os.path.join(os.path.expanduser("~"), ".cache", "sweep", "jax")
    folder = os.environ.get("SWEEP_JAX_CACHE", default)
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # a read-only home: compile every time
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_persistent_compilation_cache()

from .report import summary as summary  # noqa: E402
from .results import load as load  # noqa: E402

__version__ = "0.1.0"
