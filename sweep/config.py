"""Sweep configuration: a TOML file, validated into frozen dataclasses, expanded into cells.

Every malformed value raises `ConfigError` naming the field and what was expected; the
CLI prints that one line and exits with status 2.
"""

import ast
import dataclasses
import importlib.resources
import json
import math
import operator
import tomllib
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A config field or argument has a bad value. The message is one line for the user."""

    def __init__(self, field_name, expected, got, detail=None):
        super().__init__(detail or f"{field_name}: expected {expected}, got {got!r}")


PROBLEMS = ("gaussian_relu", "empirical")
DATA = ("gaussian", "uniform", "points")
TEACHERS = ("orthonormal", "random", "targets")
ACTIVATIONS = ("relu", "leaky_relu")
OUTPUTS = ("fixed", "trained")
INITS = ("xavier", "he", "normal")
PARAMETERIZATIONS = ("standard", "ntk")
OPTIMIZERS = ("gd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "inverse_time")
STEP_UNITS = ("absolute", "ntk")


@dataclass(frozen=True)
class Problem:
    # "gaussian_relu": the closed-form population loss under x ~ N(0, I_d).
    # "empirical": the mean squared error of a network on a finite data set.
    kind: str = "gaussian_relu"
    # "orthonormal" (V = [I_k 0]), "random" (k random unit neurons), or "targets" (given).
    teacher: str = "orthonormal"
    # "relu", or "leaky_relu" with slope `alpha` for z < 0 (student and teacher alike).
    activation: str = "relu"
    alpha: float = 0.0
    # Input dimension: an expression in k.
    d: str = "k"
    # The rest is for kind = "empirical".
    data: str = "gaussian"  # gaussian N(0, I_d), uniform on [-1, 1]^d, or 1-D `points`
    samples: int = 1000  # training points drawn (gaussian, uniform)
    test_samples: int = 10000  # fresh points for the test loss
    points: tuple = ()  # data = "points": the inputs x_i (1-D)
    targets: tuple = ()  # ... and their targets y_i (teacher = "targets")
    label_noise: float = 0.0  # standard deviation of Gaussian noise added to the targets
    depth: int = 2  # weight layers of the student (2: one hidden layer)
    biases: bool = False
    output: str = "fixed"  # output weights fixed to ones, or "trained"


@dataclass(frozen=True)
class Init:
    kind: str = "xavier"
    # Standard deviation of each weight for kind = "normal" (an expression in k, n, d).
    scale: str = "1/sqrt(d)"
    # "ntk": weights N(0, scale^2 d) used as W / sqrt(fan_in) (empirical problems only).
    parameterization: str = "standard"
    # Standard deviation of the initial biases (0: zero biases).
    bias_scale: float = 0.0


@dataclass(frozen=True)
class Optimizer:
    kind: str = "gd"
    step_size: str = "5/k"
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    # Minibatch size for SGD on an empirical problem (0: full batch). Stop tests run on the
    # full batch once per epoch.
    batch_size: int = 0
    # Step-size factor over the steps t: constant, cosine (to 0 at stop.max_steps), or
    # inverse_time, 1 / (1 + t / decay_steps).
    schedule: str = "constant"
    decay_steps: int = 1000
    # "ntk": each run's step is step_size / lambda_max of its initial NTK Gram matrix.
    step_unit: str = "absolute"


@dataclass(frozen=True)
class Stop:
    grad_tol: float = 1e-12
    # Stop as soon as the loss is this small: such a point is a global minimum whatever its
    # gradient (see DESIGN: parallel neurons approach it sublinearly). 0 disables it.
    loss_tol: float = 1e-12
    max_steps: int = 200_000
    # Runs still going after this many steps get a float64 Newton polish (polish.py), again
    # at every doubling and at max_steps; one that reaches grad_tol stops there. 0: never.
    polish_after: int = 20_000
    # At those same checkpoints, a run whose loss fell by at most this fraction since the
    # previous one stops on a plateau (a minimum on a kink of an empirical loss). 0: never.
    plateau_tol: float = 0.0


@dataclass(frozen=True)
class Classify:
    # A converged point with loss at or below this is a global minimum.
    global_loss_tol: float = 1e-8
    # For n = k: largest distance |w_i - v_pi(i)| still counted as matching the teacher.
    match_tol: float = 1e-3
    # Smallest Hessian eigenvalue below -eig_tol makes a converged point a saddle.
    eig_tol: float = 1e-9
    # A neuron with norm below this is zero: the escape-neuron test replaces the Hessian.
    zero_tol: float = 1e-8
    # Entries closer than this count as equal when reading a point's symmetry type.
    symmetry_tol: float = 1e-5
    # 1-D students: a loss within this relative distance of the piecewise linear
    # regression error counts as equal to it ("essentially linear").
    linear_tol: float = 1e-3


@dataclass(frozen=True)
class Engine:
    # Runs trained at once (0: a default for the backend); rounded to the device count.
    batch_size: int = 0
    # Optimizer steps per jitted segment between refills.
    segment_steps: int = 0


@dataclass(frozen=True)
class Config:
    name: str = "default"
    seed: int = 0
    k: tuple = (6, 7, 8)
    n: str = "k"
    seeds: int = 200
    shard_size: int = 250
    problem: Problem = field(default_factory=Problem)
    init: Init = field(default_factory=Init)
    optimizer: Optimizer = field(default_factory=Optimizer)
    stop: Stop = field(default_factory=Stop)
    classify: Classify = field(default_factory=Classify)
    engine: Engine = field(default_factory=Engine)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_raw(self):
        """The config as TOML-shaped tables, accepted back by `from_dict`."""
        flat = self.to_dict()
        sweep = {key: flat.pop(key) for key in _SWEEP_KEYS}
        sweep["k"] = list(sweep["k"])
        return {"sweep": sweep, **flat}

    def identity(self):
        """The fields that decide results (not engine tuning): a resume must match them."""
        fields = self.to_raw()
        fields.pop("engine")
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class Cell:
    """One point of the sweep grid: every run of a cell shares these values."""

    k: int
    n: int
    d: int
    step_size: float
    init_scale: float

    @property
    def shape(self):
        return (self.n, self.d, self.k)

    @property
    def label(self):
        return f"k{self.k:02d}-n{self.n:02d}-d{self.d:02d}"


# ---------------------------------------------------------------------------------------
# Expressions in k, n, d: "k+1", "5/k", "1/sqrt(d)".

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp}


def evaluate(expression, field_name, **names):
    """Evaluate an arithmetic expression in the given names (numbers pass through)."""
    if isinstance(expression, bool):
        raise ConfigError(field_name, "a number or an expression in k", expression)
    if isinstance(expression, (int, float)):
        return expression
    expected = f"a number or an arithmetic expression in {', '.join(names) or 'numbers'}"
    if not isinstance(expression, str):
        raise ConfigError(field_name, expected, expression)

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and len(node.args) == 1
        ):
            return _FUNCTIONS[node.func.id](walk(node.args[0]))
        raise ValueError

    try:
        return walk(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError):
        raise ConfigError(field_name, expected, expression) from None


def parse_k(value, field_name="sweep.k"):
    """ "6..20", "6,8,10", 6 or [6, 8] -> a sorted tuple of distinct positive ints."""
    expected = "a width >= 1, a range like 6..20 (low <= high) or a list like 6,8,10"
    if isinstance(value, bool):
        raise ConfigError(field_name, expected, value)
    if isinstance(value, int):
        values = [value]
    elif isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(field_name, expected, value)
        values = list(value)
    elif isinstance(value, str):
        values = []
        try:
            for part in value.split(","):
                if ".." in part:
                    low, high = (int(x) for x in part.split(".."))
                    if low > high:
                        raise ValueError
                    values.extend(range(low, high + 1))
                else:
                    values.append(int(part))
        except ValueError:
            raise ConfigError(field_name, expected, value) from None
    else:
        raise ConfigError(field_name, expected, value)
    if not values or min(values) < 0:  # 0: no teacher (explicit targets)
        raise ConfigError(field_name, expected, value)
    return tuple(sorted(set(values)))


def widths_for(n_spec, k, field_name="sweep.n"):
    """Student widths for teacher width k: "k", "k+1", "k..k+2", "k,2*k" or an int."""
    expected = "student widths >= 1 as an expression in k: k, k+1, k..k+2 or k,2*k"
    if isinstance(n_spec, int) and not isinstance(n_spec, bool):
        n_spec = str(n_spec)
    if not isinstance(n_spec, str) or not n_spec.strip():
        raise ConfigError(field_name, expected, n_spec)
    widths = []
    for part in n_spec.split(","):
        bounds = part.split("..")
        if len(bounds) > 2:
            raise ConfigError(field_name, expected, n_spec)
        values = [evaluate(b, field_name, k=k) for b in bounds]
        if not all(float(v).is_integer() for v in values):
            raise ConfigError(field_name, expected, n_spec)
        low, high = int(values[0]), int(values[-1])
        if low > high:
            raise ConfigError(field_name, expected + " (low <= high)", n_spec)
        widths.extend(range(low, high + 1))
    if min(widths) < 1:
        raise ConfigError(field_name, expected + f" (k = {k} gives n = {min(widths)})", n_spec)
    return tuple(sorted(set(widths)))


# ---------------------------------------------------------------------------------------
# Loading and validation.

_SECTIONS = {
    "problem": Problem,
    "init": Init,
    "optimizer": Optimizer,
    "stop": Stop,
    "classify": Classify,
    "engine": Engine,
}
_SWEEP_KEYS = ("name", "seed", "k", "n", "seeds", "shard_size")


def _check_keys(table, allowed, where):
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}" if where else key,
                f"a known key ({', '.join(allowed)})",
                "unknown key",
            )


def _number(value, field_name, kind=float, low=None, high=None, low_open=False):
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


def _choice(value, field_name, choices):
    if value not in choices:
        raise ConfigError(field_name, f"one of {', '.join(choices)}", value)
    return value


def _validate(raw):
    """Build a Config from a dict of TOML tables, checking every field."""
    _check_keys(raw, ("sweep", *_SECTIONS), "")
    sweep = raw.get("sweep", {})
    _check_keys(sweep, _SWEEP_KEYS, "sweep")
    sections = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(name, "a table", table)
        allowed = tuple(f.name for f in dataclasses.fields(cls))
        _check_keys(table, allowed, name)
        sections[name] = cls(**table)

    name = sweep.get("name", "default")
    if not isinstance(name, str) or not name or "/" in name or name.startswith((".", "_")):
        raise ConfigError("sweep.name", "a non-empty name without '/' or a leading . or _", name)
    config = Config(
        name=name,
        seed=_number(sweep.get("seed", 0), "sweep.seed", int, 0, 2**31 - 1),
        k=parse_k(sweep.get("k", Config.k)),
        n=sweep.get("n", "k"),
        seeds=_number(sweep.get("seeds", Config.seeds), "sweep.seeds", int, 1),
        shard_size=_number(sweep.get("shard_size", Config.shard_size), "sweep.shard_size", int, 1),
        **sections,
    )
    if isinstance(config.n, int) and not isinstance(config.n, bool):
        config = dataclasses.replace(config, n=str(config.n))

    config = dataclasses.replace(config, problem=_validate_problem(config))
    _choice(config.problem.activation, "problem.activation", ACTIVATIONS)
    if config.problem.activation == "leaky_relu":
        _number(config.problem.alpha, "problem.alpha", float, 0.0, 1.0, low_open=True)
    elif config.problem.alpha != 0:
        raise ConfigError("problem.alpha", "0 for activation relu", config.problem.alpha)
    _choice(config.init.kind, "init.kind", INITS)
    _choice(config.init.parameterization, "init.parameterization", PARAMETERIZATIONS)
    _number(config.init.bias_scale, "init.bias_scale", float, 0.0)
    _choice(config.optimizer.kind, "optimizer.kind", OPTIMIZERS)
    _choice(config.optimizer.schedule, "optimizer.schedule", SCHEDULES)
    _number(config.optimizer.decay_steps, "optimizer.decay_steps", int, 1)
    _choice(config.optimizer.step_unit, "optimizer.step_unit", STEP_UNITS)
    _number(config.optimizer.batch_size, "optimizer.batch_size", int, 0)
    if config.problem.kind == "gaussian_relu":
        _closed_form_only(config)
    elif config.optimizer.batch_size > _training_points(config.problem):
        raise ConfigError(
            "optimizer.batch_size",
            f"at most the {_training_points(config.problem)} training points",
            config.optimizer.batch_size,
        )
    _number(config.optimizer.momentum, "optimizer.momentum", float, 0.0, 1.0)
    _number(config.optimizer.b1, "optimizer.b1", float, 0.0, 1.0)
    _number(config.optimizer.b2, "optimizer.b2", float, 0.0, 1.0)
    _number(config.stop.grad_tol, "stop.grad_tol", float, 0.0, low_open=True)
    _number(config.stop.loss_tol, "stop.loss_tol", float, 0.0)
    _number(config.stop.max_steps, "stop.max_steps", int, 1)
    _number(config.stop.polish_after, "stop.polish_after", int, 0)
    _number(config.stop.plateau_tol, "stop.plateau_tol", float, 0.0)
    if config.stop.plateau_tol and not config.stop.polish_after:
        raise ConfigError(
            "stop.polish_after",
            "checkpoints (> 0) for stop.plateau_tol to compare losses at",
            config.stop.polish_after,
        )
    _number(config.classify.global_loss_tol, "classify.global_loss_tol", float, 0.0, low_open=True)
    _number(config.classify.match_tol, "classify.match_tol", float, 0.0, low_open=True)
    _number(config.classify.eig_tol, "classify.eig_tol", float, 0.0)
    _number(config.classify.zero_tol, "classify.zero_tol", float, 0.0)
    _number(config.classify.symmetry_tol, "classify.symmetry_tol", float, 0.0, low_open=True)
    _number(config.classify.linear_tol, "classify.linear_tol", float, 0.0)
    _number(config.engine.batch_size, "engine.batch_size", int, 0)
    _number(config.engine.segment_steps, "engine.segment_steps", int, 0)
    if config.stop.loss_tol > config.classify.global_loss_tol:
        raise ConfigError(
            "stop.loss_tol",
            f"a value <= classify.global_loss_tol ({config.classify.global_loss_tol})",
            config.stop.loss_tol,
        )
    cells(config)  # expands every expression, so a bad one fails here, before any work
    return config


def _flag(value, field_name):
    if not isinstance(value, bool):
        raise ConfigError(field_name, "true or false", value)
    return value


def _numbers(value, field_name):
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ConfigError(field_name, "a list of numbers", value)
    return tuple(float(v) for v in value)


def _training_points(problem):
    return len(problem.points) if problem.data == "points" else problem.samples


def _validate_problem(config):
    """Check the [problem] table; returns it with lists as tuples."""
    problem = config.problem
    _choice(problem.kind, "problem.kind", PROBLEMS)
    _choice(problem.data, "problem.data", DATA)
    _choice(problem.teacher, "problem.teacher", TEACHERS)
    _choice(problem.output, "problem.output", OUTPUTS)
    _number(problem.samples, "problem.samples", int, 1)
    _number(problem.test_samples, "problem.test_samples", int, 1)
    _number(problem.label_noise, "problem.label_noise", float, 0.0)
    _number(problem.depth, "problem.depth", int, 2)
    _flag(problem.biases, "problem.biases")
    problem = dataclasses.replace(
        problem,
        points=_numbers(problem.points, "problem.points"),
        targets=_numbers(problem.targets, "problem.targets"),
    )
    if (problem.teacher == "targets") != (problem.data == "points"):
        raise ConfigError(
            "problem.teacher",
            "targets exactly when problem.data = points",
            problem.teacher,
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
        raise ConfigError("sweep.k", "teacher widths >= 1", config.k)
    return problem


def _closed_form_only(config):
    """The closed form is the population loss of the plain two-layer net, nothing else."""
    fixed = {
        "problem.data": (config.problem.data, "gaussian"),
        "problem.teacher": (config.problem.teacher, "orthonormal"),
        "problem.depth": (config.problem.depth, 2),
        "problem.biases": (config.problem.biases, False),
        "problem.output": (config.problem.output, "fixed"),
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


def cells(config):
    """The sweep grid: one Cell per (k, n), in a fixed order."""
    grid = []
    for k in config.k:
        d = evaluate(config.problem.d, "problem.d", k=k)
        if not float(d).is_integer() or d < 1:
            raise ConfigError("problem.d", f"an input dimension >= 1 (k = {k} gives {d})", d)
        d = int(d)
        if config.problem.data == "points" and d != 1:
            raise ConfigError("problem.d", "1 for problem.data = points", config.problem.d)
        if config.problem.teacher == "orthonormal" and d < k:
            raise ConfigError(
                "problem.d", f"at least k for the orthonormal teacher (k = {k} gives {d})", d
            )
        for n in widths_for(config.n, k):
            names = dict(k=k, n=n, d=d)
            step = evaluate(config.optimizer.step_size, "optimizer.step_size", **names)
            if not step > 0 or not math.isfinite(step):
                raise ConfigError(
                    "optimizer.step_size", f"a step size > 0 (k = {k} gives {step})", step
                )
            scale = {"xavier": 1 / math.sqrt(d), "he": math.sqrt(2 / d)}.get(config.init.kind)
            if scale is None:
                scale = evaluate(config.init.scale, "init.scale", **names)
                if not scale > 0 or not math.isfinite(scale):
                    raise ConfigError("init.scale", f"a scale > 0 (k = {k} gives {scale})", scale)
            grid.append(Cell(k=k, n=n, d=d, step_size=float(step), init_scale=float(scale)))
    return grid


def from_dict(raw, overrides=None):
    """Validate a config given as nested dicts; overrides map "section.key" to a value."""
    raw = json.loads(json.dumps(raw))  # a deep copy that also drops TOML-specific types
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return _validate(raw)


def load(path=None, overrides=None):
    """Read a TOML config (the embedded default when path is None) and validate it."""
    if path is None:
        text = importlib.resources.files("sweep").joinpath("default.toml").read_text()
        where = "default config"
    else:
        where = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as error:
            raise ConfigError(
                "CONFIG", "a readable TOML file", f"{path} ({error.strerror})"
            ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(where, "valid TOML", str(error)) from None
    return from_dict(raw, overrides)
