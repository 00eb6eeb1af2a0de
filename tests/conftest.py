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
