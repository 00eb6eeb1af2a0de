"""The protocols of published experiments: which config values a sweep must have for a
published table to apply to it."""

from typing import Any

# Safran & Shamir (ICML 2018), Tables 1 and 2: the closed-form ReLU loss with the
# orthonormal teacher, Xavier init, plain GD with step 5/k.
SAFRAN_SHAMIR_2018 = {
    "problem.kind": "gaussian_relu",
    "problem.activation": "relu",
    "problem.teacher": "orthonormal",
    "init.kind": "xavier",
    "optimizer.kind": "gd",
    "optimizer.step_size": "5/k",
    "optimizer.schedule": "constant",
}


def _value(config: Any, dotted: str) -> Any:
    section, field = dotted.split(".")
    return getattr(getattr(config, section), field)


def departures(config: Any, protocol: dict[str, Any]) -> list[str]:
    """The ways a config departs from a protocol ("optimizer.kind = flow (published: gd)"),
    a `[grid]` axis over one of its fields included; empty where the protocol applies."""
    found = [
        f"{name} = {_value(config, name)} (published: {value})"
        for name, value in protocol.items()
        if str(_value(config, name)) != str(value)
    ]
    found += [f"a [grid] axis over {name}" for name, _ in config.grid if name in protocol]
    return found
