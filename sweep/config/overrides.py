"""Overrides of config fields, as "section.field" -> value, from the command line
(`--set stop.polish_after=0`, `--k 6..8`) or from Python (`sweep.run(k="6..8",
stop={"max_steps": 1000})`). `from_dict` and `load` apply them and validate the result."""

import tomllib

from .errors import ConfigError
from .schema import SECTIONS, SWEEP_KEYS


def _value(text: str) -> object:
    """A value read as TOML; a bare word or expression ("5/k") as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_setting(item: str, option: str = "--set") -> tuple[str, object]:
    """ "stop.polish_after=0" -> ("stop.polish_after", 0); values are read as TOML, and a
    bare word or expression ("5/k") as a string."""
    key, equals, text = item.partition("=")
    if not equals or "." not in key:
        raise ConfigError(option, "SECTION.FIELD=VALUE, e.g. stop.polish_after=0", item)
    return key.strip(), _value(text)


def parse_axis(item: str) -> tuple[str, list]:
    """ "optimizer.step_size=1/k,5/k" -> ("optimizer.step_size", ["1/k", "5/k"]): a
    `[grid]` axis from the command line, its values read as in `parse_setting`."""
    key, equals, text = item.partition("=")
    if not equals or "." not in key or not text.strip():
        raise ConfigError("--grid", "SECTION.FIELD=V1,V2,..., e.g. optimizer.step_size=1/k,5/k",
                          item)  # fmt: skip
    return key.strip(), [_value(value) for value in text.split(",")]


def keyword_overrides(given: dict) -> dict:
    """k="6..7", seeds=50, stop={"max_steps": 1000}, grid={"optimizer.step_size": ["1/k",
    "5/k"]} -> {"sweep.k": ..., "stop.max_steps": ..., "grid.optimizer.step_size": [...]}"""
    found = {}
    for key, value in given.items():
        if key in SWEEP_KEYS:
            found[f"sweep.{key}"] = value
        elif key == "grid" and isinstance(value, dict):
            found.update({f"grid.{axis}": values for axis, values in value.items()})
        elif key in SECTIONS and isinstance(value, dict):
            found.update({f"{key}.{field}": v for field, v in value.items()})
        else:
            expected = (
                f"a sweep field ({', '.join(SWEEP_KEYS)}) or a section dict ({', '.join(SECTIONS)})"
            )
            raise ConfigError(key, expected, value)
    return found
