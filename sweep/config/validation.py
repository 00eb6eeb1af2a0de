"""From TOML tables to a checked `Config`: every malformed value raises `ConfigError`
naming the field and what was expected (the CLI prints that one line, exit status 2).

Single fields are checked against the bounds and choices in their schema metadata; the
rules that tie fields together are spelled out below.
"""

import dataclasses
import difflib
import itertools
import json
import math

from .errors import ConfigError
from .expressions import parse_k
from .grid import cells
from .schema import ACTIVATIONS, AXIS_SECTIONS, SECTIONS, SWEEP_KEYS, Config


def _check_keys(table: dict, allowed: tuple, where: str) -> None:
    for key in table:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            near = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
            hint = f"did you mean {where + '.' if where else ''}{near[0]}? " if near else ""
            raise ConfigError(name, None, None, detail=f"{name}: unknown key; {hint}"
                              f"known keys: {', '.join(allowed)}")  # fmt: skip


def number(
    value: object,
    field_name: str,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """`value` as an int or float within the bounds, else a ConfigError."""
    expected = {int: "an integer", float: "a number"}[kind]
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"<= {high}")
    if bounds:
        expected += " " + " and ".join(bounds)
    ok_type = (isinstance(value, int) if kind is int else isinstance(value, (int, float))) and not (
        isinstance(value, bool)
    )
    if not ok_type or (kind is float and not math.isfinite(value)):
        raise ConfigError(field_name, expected, value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(field_name, expected, value)
    if high is not None and value > high:
        raise ConfigError(field_name, expected, value)
    return kind(value)


def _numbers(value, field_name: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ConfigError(field_name, "a list of numbers", value)
    return tuple(float(v) for v in value)


def _check_field(section: str, f: dataclasses.Field, value) -> None:
    """One field against its schema metadata (choices, or a number's bounds)."""
    name = f"{section}.{f.name}"
    meta = f.metadata
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise ConfigError(name, f"one of {', '.join(meta['choices'])}", value)
    elif isinstance(f.default, bool):
        if not isinstance(value, bool):
            raise ConfigError(name, "true or false", value)
    elif isinstance(f.default, (int, float)) and any(
        meta.get(key) is not None for key in ("low", "high")
    ):
        kind = int if isinstance(f.default, int) else float
        number(value, name, kind, meta["low"], meta["high"], meta["low_open"])


def _section(raw: dict, name: str, cls):
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(name, "a table", table)
    _check_keys(table, tuple(f.name for f in dataclasses.fields(cls)), name)
    section = cls(**table)
    for f in dataclasses.fields(cls):
        _check_field(name, f, getattr(section, f.name))
    return section


def _sweep_fields(sweep: dict) -> dict:
    name = sweep.get("name", Config.name)
    if not isinstance(name, str) or not name or "/" in name or name.startswith((".", "_")):
        raise ConfigError("sweep.name", "a non-empty name without '/' or a leading . or _", name)
    found = {"name": name, "k": parse_k(sweep.get("k", Config.k))}
    n = sweep.get("n", Config.n)
    found["n"] = str(n) if isinstance(n, int) and not isinstance(n, bool) else n
    for f in dataclasses.fields(Config):
        if f.name in ("seed", "seeds", "shard_size", "target_halfwidth"):
            value, meta = sweep.get(f.name, f.default), f.metadata
            found[f.name] = number(value, f"sweep.{f.name}", type(f.default), meta["low"],
                                   meta["high"])  # fmt: skip
    return found


def validate(raw: dict) -> Config:
    """Build a Config from a dict of TOML tables, checking every field."""
    _check_keys(raw, ("sweep", *SECTIONS, "grid"), "")
    grid = _grid(raw.get("grid", {}))
    for values in itertools.product(*(values for _, values in grid)):
        # Every combination of the axes must make a valid config on its own.
        combined = {section: dict(raw.get(section, {})) for section in SECTIONS}
        for (dotted, _), value in zip(grid, values, strict=True):
            section, _, name = dotted.partition(".")
            combined[section][name] = value
        try:
            _validate_one({**raw, **combined})
        except ConfigError as error:  # name the axis the bad value came from
            if not any(str(error).startswith(f"{dotted}:") for dotted, _ in grid):
                raise
            raise ConfigError("", None, None, detail=f"grid.{error}") from None
    config = dataclasses.replace(_validate_one(raw), grid=grid)
    cells(config)  # expands every expression, so a bad one fails here, before any work
    return config


def _validate_one(raw: dict) -> Config:
    sweep = raw.get("sweep", {})
    _check_keys(sweep, SWEEP_KEYS, "sweep")
    sections = {name: _section(raw, name, cls) for name, cls in SECTIONS.items()}
    config = Config(**_sweep_fields(sweep), **sections)
    config = dataclasses.replace(config, problem=_problem_rules(config))
    _optimizer_rules(config)
    _stop_rules(config)
    cells(config)
    return config


def _flat(table: dict, prefix: str = "") -> dict:
    """{"optimizer": {"step_size": [...]}} (TOML's dotted keys) -> {"optimizer.step_size": [...]}"""
    found = {}
    for key, value in table.items():
        if isinstance(value, dict):
            found.update(_flat(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _grid(table) -> tuple:
    """The `[grid]` table as (("section.field", (value, ...)), ...), values typed as their
    field's default (an expression field takes numbers as text)."""
    if not isinstance(table, dict):
        raise ConfigError("grid", 'a table of axes, such as "optimizer.step_size" = [...]', table)
    axes = []
    for dotted, values in _flat(table).items():
        section, _, name = dotted.partition(".")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS.get(section, Config))}
        if section not in AXIS_SECTIONS or name not in fields or dotted == "classify.certify":
            raise ConfigError(
                f"grid.{dotted}",
                f"a field of {', '.join(AXIS_SECTIONS)} (SECTION.FIELD; k and n are [sweep]'s)",
                "unknown axis",
            )
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid.{dotted}", "a non-empty list of values", values)
        default = fields[name].default
        values = [tuple(v) if isinstance(v, list) else v for v in values]  # hashable cells
        if isinstance(default, str):
            values = [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                      for v in values]  # fmt: skip
        elif isinstance(default, float):
            values = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                      for v in values]  # fmt: skip
        if len(set(map(repr, values))) < len(values):
            raise ConfigError(f"grid.{dotted}", "distinct values", values)
        axes.append((dotted, tuple(values)))
    return tuple(axes)


def _problem_rules(config: Config):
    """Rules across [problem] fields and sweep.k; returns the table with lists as tuples."""
    problem = dataclasses.replace(
        config.problem,
        points=_numbers(config.problem.points, "problem.points"),
        targets=_numbers(config.problem.targets, "problem.targets"),
        teacher_norms=_numbers(config.problem.teacher_norms, "problem.teacher_norms"),
    )
    _activation_rules(problem)
    _teacher_rules(problem, config)
    if (problem.teacher == "targets") != (problem.data == "points"):
        raise ConfigError(
            "problem.teacher", "targets exactly when problem.data = points", problem.teacher
        )
    if problem.data == "points":
        if not problem.points:
            raise ConfigError("problem.points", "a non-empty list of inputs", [])
        if len(problem.targets) != len(problem.points):
            raise ConfigError(
                "problem.targets",
                f"one target per point ({len(problem.points)})",
                list(problem.targets),
            )
        if config.k != (0,):
            raise ConfigError("sweep.k", "0 (no teacher) for problem.teacher = targets", config.k)
    elif 0 in config.k:
        shown = ",".join(map(str, config.k))
        raise ConfigError("sweep.k", "teacher widths >= 1 (0 only with problem.teacher = "
                          "\"targets\")", shown)  # fmt: skip
    if problem.kind == "gaussian_relu":
        _closed_form_only(dataclasses.replace(config, problem=problem))
    return problem


def _training_points(problem) -> int:
    return len(problem.points) if problem.data == "points" else problem.samples


def _optimizer_rules(config: Config) -> None:
    optimizer = config.optimizer
    if optimizer.flow:  # the flow has no minibatches, schedule or float32 phase
        plain = {"optimizer.batch_size": (optimizer.batch_size, 0),
                 "optimizer.schedule": (optimizer.schedule, "constant"),
                 "optimizer.precision": (optimizer.precision, "float64"),
                 "optimizer.step_unit": (optimizer.step_unit, "absolute")}  # fmt: skip
        for name, (value, only) in plain.items():
            if value != only:
                raise ConfigError(name, f"{json.dumps(only)} for optimizer.kind = flow", value)
    points = _training_points(config.problem)
    if config.problem.kind == "empirical" and config.optimizer.batch_size > points:
        raise ConfigError(
            "optimizer.batch_size", f"at most the {points} training points",
            config.optimizer.batch_size,
        )  # fmt: skip


def _stop_rules(config: Config) -> None:
    if config.stop.plateau_tol and not config.stop.polish_after:
        raise ConfigError(
            "stop.polish_after",
            "checkpoints (> 0) for stop.plateau_tol to compare losses at",
            config.stop.polish_after,
        )
    if config.stop.loss_tol > config.classify.global_loss_tol:
        raise ConfigError(
            "stop.loss_tol",
            f"a value <= classify.global_loss_tol ({config.classify.global_loss_tol})",
            config.stop.loss_tol,
        )


def _activation_rules(problem) -> None:
    name = problem.activation
    if not isinstance(name, str) or not (name in ACTIVATIONS or _dotted(name)):
        raise ConfigError("problem.activation", f"one of {', '.join(ACTIVATIONS)}, or a "
                          "JAX function as module.function", name)  # fmt: skip
    if problem.kind == "empirical" and name not in ("relu", "leaky_relu"):
        raise ConfigError("problem.activation", "relu or leaky_relu for problem.kind = "
                          "empirical (any activation: gaussian_relu, the population loss)",
                          name)  # fmt: skip
    if name == "leaky_relu":
        number(problem.alpha, "problem.alpha", float, 0.0, 1.0, low_open=True)
    elif problem.alpha != 0:
        raise ConfigError("problem.alpha", f"0 for activation {name}", problem.alpha)


def _dotted(name: str) -> bool:
    """A module.function (or module:function) path of Python identifiers."""
    parts = name.replace(":", ".").split(".")
    return len(parts) >= 2 and all(part.isidentifier() for part in parts)


def _teacher_rules(problem, config: Config) -> None:
    if problem.teacher == "file":
        if not problem.teacher_file:
            raise ConfigError("problem.teacher_file", "a .npy or text file for teacher = "
                              "file", problem.teacher_file)  # fmt: skip
        if len(config.k) != 1:
            raise ConfigError(
                "sweep.k",
                "one teacher width (the file's rows) for problem.teacher = file",
                ",".join(map(str, config.k)),
            )
    elif problem.teacher_file:
        raise ConfigError("problem.teacher_file", 'empty unless problem.teacher = "file"',
                          problem.teacher_file)  # fmt: skip
    norms = problem.teacher_norms
    if norms and problem.teacher == "targets":
        raise ConfigError("problem.teacher_norms", "empty for teacher = targets", list(norms))
    if any(norm <= 0 for norm in norms):
        raise ConfigError("problem.teacher_norms", "positive numbers", list(norms))
    if len(norms) > 1 and any(len(norms) != k for k in config.k):
        raise ConfigError("problem.teacher_norms", "one number, or one per teacher neuron "
                          f"(k = {','.join(map(str, config.k))})", list(norms))  # fmt: skip


def _closed_form_only(config: Config) -> None:
    """The closed form is the population loss of the plain two-layer net, nothing else."""
    fixed = {
        "problem.data": (config.problem.data, "gaussian"),
        "problem.depth": (config.problem.depth, 2),
        "problem.biases": (config.problem.biases, False),
        "init.parameterization": (config.init.parameterization, "standard"),
        "init.bias_scale": (config.init.bias_scale, 0.0),
        "optimizer.batch_size": (config.optimizer.batch_size, 0),
        "optimizer.step_unit": (config.optimizer.step_unit, "absolute"),
    }
    for name, (value, only) in fixed.items():
        if value != only:
            raise ConfigError(
                name,
                f"{json.dumps(only)} for problem.kind = gaussian_relu (the closed form); "
                "use problem.kind = empirical",
                value,
            )
