"""The Python entry point: run a sweep from a notebook or a script.

    import sweep
    runs = sweep.run("configs/default.toml", k="6..7", seeds=50)
    runs.attrs["path"]          # where the rows were written

The same resume semantics as `python -m sweep run`: shards already in the folder are
kept, a different config is refused unless fresh=True.
"""

import sys
from pathlib import Path

import pandas as pd

from . import config as config_module
from . import results, runtime
from .config import Config, ConfigError
from .config.schema import SECTIONS, SWEEP_KEYS
from .runner import RunOptions, run_sweep


def _overrides(given: dict) -> dict:
    """k="6..7", seeds=50, stop={"max_steps": 1000} -> {"sweep.k": ..., "stop.max_steps": ...}"""
    found = {}
    for key, value in given.items():
        if key in SWEEP_KEYS:
            found[f"sweep.{key}"] = value
        elif key in SECTIONS and isinstance(value, dict):
            found.update({f"{key}.{field}": v for field, v in value.items()})
        else:
            expected = (
                f"a sweep field ({', '.join(SWEEP_KEYS)}) or a section dict ({', '.join(SECTIONS)})"
            )
            raise ConfigError(key, expected, value)
    return found


def run(
    config: str | Path | Config | None = None,
    *,
    out: str | Path | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    **overrides,
) -> pd.DataFrame:
    """Train, classify and store a sweep; returns its runs, one row per run.

    Args:
      config: a TOML file, a `Config`, or None for the defaults.
      out: the results folder (default: results/<name>, with the overrides in the name).
      fresh: replace what `out` holds instead of resuming.
      progress: a progress bar (None: where the output is a terminal or a notebook).
      **overrides: sweep fields (k="6..20", n="k+1", seeds=1000, seed=3) and sections as
        dicts (stop={"max_steps": 50000}).

    Returns:
      The runs as a DataFrame; `frame.attrs["path"]` is the folder they were written to.

    The sweep trains in float64 and keeps compiled programs on disk for its duration
    (`runtime.sweep_settings`); the caller's JAX settings are restored afterwards.
    """
    changes = _overrides(overrides)
    if isinstance(config, Config):
        config = config_module.from_dict(config.to_raw(), changes)
    else:
        config = config_module.load(config, changes)
    shown = {key: overrides[key] for key in ("k", "n", "seeds") if key in overrides}
    folder = Path(out) if out is not None else results.default_folder(config.name, **shown)
    with runtime.sweep_settings():
        run_sweep(config, folder, RunOptions(fresh=fresh, progress=progress))
    frame = results.load(folder)
    frame.attrs["path"] = str(folder)
    print(f"sweep: {len(frame)} runs in {folder}", file=sys.stderr)
    return frame
