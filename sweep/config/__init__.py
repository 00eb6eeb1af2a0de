"""Sweep configuration: a TOML file, validated into frozen dataclasses, expanded into cells.

`schema.py` holds every field with its default and meaning, `expressions.py` the small
languages of values ("5/k", "6..20", "k..k+2"), `validation.py` the checks, `grid.py`
the expansion into cells and `shards.py` the list of shards any worker can run.
"""

import json
import tomllib
from pathlib import Path

from .errors import ConfigError as ConfigError
from .expressions import evaluate as evaluate
from .expressions import parse_k as parse_k
from .expressions import widths_for as widths_for
from .grid import Cell as Cell
from .grid import cells as cells
from .schema import ClassifySettings as ClassifySettings
from .schema import Config as Config
from .schema import EngineSettings as EngineSettings
from .schema import InitSettings as InitSettings
from .schema import OptimizerSettings as OptimizerSettings
from .schema import ProblemSettings as ProblemSettings
from .schema import StopSettings as StopSettings
from .schema import default_toml as default_toml
from .shards import Shard as Shard
from .shards import shard_list as shard_list
from .validation import validate


def from_dict(raw: dict, overrides: dict | None = None) -> Config:
    """Validate a config given as nested dicts; overrides map "section.key" to a value."""
    raw = json.loads(json.dumps(raw))  # a deep copy that also drops TOML-specific types
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return validate(raw)


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read a TOML config and validate it; None gives the defaults of `schema.py`."""
    if path is None:
        return from_dict({}, overrides)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("CONFIG", "a readable TOML file", f"{path} ({error.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), "valid TOML", str(error)) from None
    return from_dict(raw, overrides)
