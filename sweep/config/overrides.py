"""Overrides of config fields, as "section.field" -> value, from the command line
(`--set stop.polish_after=0`, `--k 6..8`) or from Python (`sweep.run(k="6..8",
stop={"max_steps": 1000})`). `from_dict` and `load` apply them and validate the result."""

import tomllib

from .errors import ConfigError
from .schema import SECTIONS, SWEEP_KEYS


def parse_setting(item: str) -> tuple[str, object]:
    """ "stop.polish_after=0" -> ("stop.polish_after", 0); values are read as TOML, and a
    bare word or expression ("5/k") as a string."""
    key, equals, text = item.partition("=")
    if not equals or "." not in key:
        raise ConfigError("--set", "SECTION.FIELD=VALUE, e.g. stop.polish_after=0", item)
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def keyword_overrides(given: dict) -> dict:
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
