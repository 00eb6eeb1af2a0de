"""`import sweep` changes nothing in the host process; `sweep.run` sets what a sweep needs
for its own duration and gives the caller's settings back."""

import json
import os
import subprocess
import sys

import pytest

from sweep.commands.cli import main

PROBE = """
import json, os, sys
import jax, matplotlib
import pytest
import sweep, sweep.commands.cli, sweep.reports, sweep.reports.plots
import sweep.commands.replay, sweep.commands.cluster
import sweep.commands.certify

def state():
    return {
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "cache_dir": jax.config.jax_compilation_cache_dir,
        "cache_min_secs": jax.config.jax_persistent_cache_min_compile_time_secs,
        "backend": matplotlib.get_backend(),
        "jax_started": __import__("sweep.runtime").runtime.jax_started(),
    }

after_import = state()
runs = sweep.load(sys.argv[1])
sweep.reports.write_report(sys.argv[1])  # draws PNGs
after_report = state()
devices = len(jax.devices())  # JAX starts here, before the sweep
frame = sweep.run(k="4", seeds=4, out=sys.argv[2], progress=False)
print(json.dumps({
    "after_import": after_import, "after_report": after_report, "after_run": state(),
    "loaded": len(runs), "ran": len(frame), "path": frame.attrs["path"],
    "dtype_after_run": str(jax.numpy.zeros(1).dtype), "devices": devices,
}))
"""


@pytest.mark.slow
def test_import_sets_nothing_and_run_restores_the_callers_settings(tmp_path):
    folder = tmp_path / "done"
    assert main(["run", "--k", "4", "--seeds", "6", "--no-progress", "--out", str(folder)]) == 0
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    env.update(MPLBACKEND="svg", SWEEP_CPU_DEVICES="2", SWEEP_JAX_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), str(tmp_path / "new")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    untouched = {
        "x64": False, "xla_flags": None, "cache_dir": None, "cache_min_secs": 1.0,
        "backend": "svg", "jax_started": False,
    }  # fmt: skip
    assert found["after_import"] == untouched
    assert found["after_report"] == untouched
    assert found["after_run"] == {**untouched, "jax_started": True}
    assert found["dtype_after_run"] == "float32"
    assert found["loaded"] == 6 and found["ran"] == 4 and found["path"] == str(tmp_path / "new")
    # JAX was started before the sweep: it keeps its one CPU device and says so.
    assert found["devices"] == 1
    assert "already started" in done.stderr and "XLA_FLAGS" in done.stderr
    # Trained in float64 all the same: the rows of the CLI's sweep (on two devices).
    import pandas as pd

    cli = pd.read_parquet(folder).sort_values("run").head(4).reset_index(drop=True)
    ran = pd.read_parquet(tmp_path / "new").sort_values("run").reset_index(drop=True)
    assert (cli["status"] == ran["status"]).all() and (cli["steps"] == ran["steps"]).all()
    assert ((cli["loss"] - ran["loss"]).abs() <= 1e-12).all()


@pytest.mark.slow
def test_the_command_line_imports_no_plotting_and_no_optimizer_it_does_not_use():
    """matplotlib and scipy.optimize take about 0.6 s to import: `python -m sweep` and
    `import sweep` load them only when a figure is drawn or a finish on data needs them."""
    probe = (
        "import sys, sweep, sweep.commands.cli\n"
        "print(sorted({'matplotlib', 'scipy.optimize'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
