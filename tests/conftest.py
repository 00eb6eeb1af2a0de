import os
import shutil
import subprocess

import numpy as np
import pytest

from sweep import config as config_module
from sweep import runtime

# What the CLI does for its process: float64, one CPU device per core (the multi-device
# path is then what every test exercises), the compilation cache. The library itself sets
# none of this on import (tests/test_imports.py).
runtime.prepare_process()


@pytest.fixture
def tiny_config():
    """A sweep small enough for unit tests: k = 4..5, 12 runs per cell, shards of 5."""

    def make(seeds=12, **sections):
        raw = {"sweep": {"name": "tiny", "k": "4..5", "seeds": seeds, "shard_size": 5}}
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        return config_module.from_dict(raw)

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _slurm_is_up():
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture
def slurm():
    if not _slurm_is_up():
        message = "no SLURM scheduler here: run .ci/slurm-up as root to start a one-node one"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test` runs two workers), the tests that submit to the one
    SLURM node run on one worker, one after another: they would wait for each other's
    tasks anyway."""
    for item in items:
        if "slurm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))
