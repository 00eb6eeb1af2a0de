"""The config schema: every field with its default, its meaning and its allowed values.

This is the one source of defaults. `configs/default.toml` is generated from it
(`default_toml`, `make defaults`) and a test checks the two agree; the validation in
`validation.py` reads the allowed values from each field's metadata.
"""

import dataclasses
import json
from dataclasses import dataclass, field

from .expressions import format_k

PROBLEMS = ("gaussian_relu", "empirical")
DATA = ("gaussian", "uniform", "points")
TEACHERS = ("orthonormal", "random", "file", "targets")
# Named activations; gaussian_relu also takes any other JAX function by dotted import path.
ACTIVATIONS = ("relu", "leaky_relu", "erf", "normal_cdf", "linear", "quadratic", "tanh",
               "sigmoid", "softplus", "gelu", "silu")  # fmt: skip
OUTPUTS = ("fixed", "trained")
INITS = ("xavier", "he", "normal")
PARAMETERIZATIONS = ("standard", "ntk")
OPTIMIZERS = ("gd", "momentum", "adam", "flow")
FLOW_SOLVERS = ("auto", "tsit5", "kvaerno5")
SCHEDULES = ("constant", "cosine", "inverse_time")
STEP_UNITS = ("absolute", "ntk")
PRECISIONS = ("float64", "mixed")


def option(
    default: object,
    doc: str,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> dataclasses.Field:
    """A config field: its default, a one-line meaning, and the values it accepts (a
    number's bounds, `low_open` for a strict lower bound, or a tuple of choices)."""
    meta = {"doc": doc, "choices": choices, "low": low, "high": high, "low_open": low_open}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ProblemSettings:
    kind: str = option(
        "gaussian_relu",
        'closed-form population loss, x ~ N(0, I_d); or "empirical"',
        choices=PROBLEMS,
    )
    teacher: str = option(
        "orthonormal",
        'V = [I_k 0]; "random" (Gaussian directions, seeded), "file" (teacher_file) or'
        ' "targets" (empirical, data = "points")',
        choices=TEACHERS,
    )
    teacher_file: str = option("", 'teacher = "file": a .npy or text file of k rows, d columns')
    teacher_norms: tuple = option((), "the teacher rows' norms: one number, or k (empty: as drawn"
                                  " or read; random rows have norm 1)")  # fmt: skip
    activation: str = option(
        "relu",
        "relu, leaky_relu (slope alpha for z < 0), erf (of z/sqrt 2), normal_cdf, linear,"
        " quadratic, tanh, sigmoid, softplus, gelu, silu, or module.function (gaussian_relu)",
    )
    quadrature_nodes: int = option(
        80, "nodes per axis of the 2-D quadrature of activations without a closed form", low=8
    )
    alpha: float = option(0.0, "the slope for z < 0: 0 < alpha < 1 for leaky_relu, 0 for relu")
    d: str = option("k", "input dimension, an expression in k (>= k for the orthonormal teacher)")
    data: str = option(
        "gaussian",
        'empirical: gaussian N(0, I_d), uniform on [-1, 1]^d, or "points" (1-D, given)',
        choices=DATA,
    )
    samples: int = option(1000, "training points (one set per k and d, shared by all runs)", low=1)
    test_samples: int = option(10000, "fresh points for the test_loss column", low=1)
    points: tuple = option((), 'data = "points": the inputs x_i ...')
    targets: tuple = option((), '... and their targets y_i (teacher = "targets", sweep.k = 0)')
    label_noise: float = option(0.0, "std of Gaussian noise added to the training targets", low=0.0)
    depth: int = option(2, "weight layers of the student (2: one hidden layer)", low=2)
    biases: bool = option(False, "biases in every layer (and the output, if trained)")
    output: str = option("fixed", 'output weights fixed to ones, or "trained"', choices=OUTPUTS)


@dataclass(frozen=True)
class InitSettings:
    kind: str = option(
        "xavier", "xavier: N(0, 1/d); he: N(0, 2/d); normal: N(0, scale^2)", choices=INITS
    )
    scale: str = option("1/sqrt(d)", 'used by kind = "normal"; an expression in k, n, d')
    parameterization: str = option(
        "standard",
        'empirical: "ntk" uses W / sqrt(fan_in), W ~ N(0, scale^2 d)',
        choices=PARAMETERIZATIONS,
    )
    bias_scale: float = option(0.0, "std of the initial biases (0: zero biases)", low=0.0)


@dataclass(frozen=True)
class OptimizerSettings:
    kind: str = option(
        "gd", "gd, momentum or adam (optax); flow: gradient flow (diffrax)", choices=OPTIMIZERS
    )
    step_size: str = option("5/k", "an expression in k, n, d (flow: the first step dt0)")
    momentum: float = option(0.9, 'for kind = "momentum"', low=0.0, high=1.0)
    b1: float = option(0.9, 'for kind = "adam"', low=0.0, high=1.0)
    b2: float = option(0.999, 'for kind = "adam"', low=0.0, high=1.0)
    batch_size: int = option(
        0, "empirical: SGD minibatch size (0: full batch); stop tests once per epoch", low=0
    )
    schedule: str = option(
        "constant",
        "step factor: constant, cosine (to 0 at max_steps), inverse_time",
        choices=SCHEDULES,
    )
    decay_steps: int = option(1000, "inverse_time: step / (1 + t / decay_steps)", low=1)
    step_unit: str = option(
        "absolute",
        'empirical: "ntk" divides step_size by lambda_max of the initial NTK',
        choices=STEP_UNITS,
    )
    solver: str = option(
        "tsit5",
        "flow: tsit5 (explicit), kvaerno5 (implicit), or auto: tsit5, then kvaerno5 below"
        " stiff_below",
        choices=FLOW_SOLVERS,
    )
    rtol: float = option(1e-6, "flow: relative tolerance of each step", low=0.0, low_open=True)
    atol: float = option(1e-9, "flow: absolute tolerance of each step", low=0.0, low_open=True)
    stiff_below: float = option(
        1e-4, 'flow, solver = "auto": the implicit solver takes over at |grad F| <= this',
        low=0.0, low_open=True,
    )  # fmt: skip
    precision: str = option(
        "float64",
        'or "mixed": float32 until |grad| <= 1e-4, then float64 (TPUs, slow-float64 GPUs)',
        choices=PRECISIONS,
    )

    @property
    def flow(self) -> bool:
        """Gradient flow rather than an optax optimizer."""
        return self.kind == "flow"


@dataclass(frozen=True)
class StopSettings:
    grad_tol: float = option(1e-12, "stop when |grad F|_F <= grad_tol", low=0.0, low_open=True)
    loss_tol: float = option(
        1e-12,
        "or when F <= loss_tol (a global minimum: wide students approach theirs slowly)"
        "; 0 disables",
        low=0.0,
    )
    max_steps: int = option(200_000, "else the run is not_converged", low=1)
    polish_after: int = option(
        20_000, "Newton-polish runs still going after this many steps (and doublings); 0 = never",
        low=0,
    )  # fmt: skip
    basin_grad: float = option(
        1e-4,
        "closed form, GD: finish by Newton once |grad F| <= this and the basin test passes"
        " (sweep/finishes/basin.py); 0 = never",
        low=0.0,
    )
    plateau_tol: float = option(
        0.0, "at those checkpoints: stop if F fell by <= this fraction (0: never)", low=0.0
    )


@dataclass(frozen=True)
class ClassifySettings:
    global_loss_tol: float = option(
        1e-8, "converged with F <= this: global", low=0.0, low_open=True
    )
    match_tol: float = option(
        1e-3, "n = k: max |w_i - v_pi(i)| that still matches the teacher", low=0.0, low_open=True
    )
    eig_tol: float = option(1e-9, "smallest Hessian eigenvalue < -eig_tol: saddle", low=0.0)
    zero_tol: float = option(
        1e-8, "a neuron shorter than this is zero: escape-neuron test decides", low=0.0
    )
    symmetry_tol: float = option(
        1e-5, "entries this close are equal when reading the symmetry type", low=0.0, low_open=True
    )
    linear_tol: float = option(
        1e-3, "1-D students: loss within this fraction of the linear fit's", low=0.0
    )
    certify: bool = option(
        False, "closed form: prove every distinct point at the end (sweep certify)"
    )


@dataclass(frozen=True)
class EngineSettings:
    batch_size: int = option(
        0, "runs trained at once; 0 = CPU 256, GPU 8192 per device, at most 1/4 of a cell", low=0
    )
    segment_steps: int = option(0, "steps per jitted segment between refills; 0 = adaptive", low=0)


SECTIONS = {
    "problem": ProblemSettings,
    "init": InitSettings,
    "optimizer": OptimizerSettings,
    "stop": StopSettings,
    "classify": ClassifySettings,
    "engine": EngineSettings,
}
SWEEP_KEYS = ("name", "seed", "k", "n", "seeds", "shard_size", "target_halfwidth")
# Sections whose fields may be `[grid]` axes: those that decide results.
AXIS_SECTIONS = ("problem", "init", "optimizer", "stop", "classify")


@dataclass(frozen=True)
class Config:
    name: str = option("default", "names the results folder, results/<name>")
    seed: int = option(
        0, "root seed; run r of cell (k, n, d) gets fold_in(key(seed), k, n, d, r)",
        low=0, high=2**31 - 1,
    )  # fmt: skip
    k: tuple = option((6, 7, 8), "teacher widths (input dimension d = k)")
    n: str = option("k", 'student widths, expressions in k: "k", "k+1", "k..k+2"')
    seeds: int = option(300, "runs per cell", low=1)
    shard_size: int = option(250, "runs per Parquet file (the unit of resume)", low=1)
    target_halfwidth: float = option(
        0.0,
        "> 0: train each cell in waves of shard_size runs until the 95% confidence sequence"
        " of its spurious rate reaches at most this far from the rate on each side (seeds:"
        " the most runs)",
        low=0.0, high=0.5,
    )  # fmt: skip
    problem: ProblemSettings = field(default_factory=ProblemSettings)
    init: InitSettings = field(default_factory=InitSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    stop: StopSettings = field(default_factory=StopSettings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    # ("section.field", (value, ...)) pairs, from the [grid] table (`grid.cells`).
    grid: tuple = option((), "extra sweep axes; cells are their product with k and n")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_raw(self) -> dict:
        """The config as TOML-shaped tables, accepted back by `from_dict`."""
        flat = self.to_dict()
        sweep = {key: flat.pop(key) for key in SWEEP_KEYS}
        sweep["k"] = list(sweep["k"])
        flat["grid"] = {name: list(values) for name, values in self.grid}
        return {"sweep": sweep, **flat}

    def identity(self) -> str:
        """The fields that decide results (not engine tuning): a resume must match them."""
        fields = self.to_raw()
        fields.pop("engine")
        fields["classify"].pop("certify")  # proofs are added to a sweep, they change no row
        return json.dumps(fields, sort_keys=True)


_HEADER = """\
# The default sweep: Safran & Shamir's protocol at small widths, a few minutes on a laptop.
# Every field is listed with its default and meaning; configs/safran_shamir_2018.toml is
# the paper's protocol. Generated from sweep/config/schema.py by `make defaults`.
"""


def toml_value(value) -> str:
    """A default as TOML writes it: true/false, [lists], "strings"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _table(name: str, cls) -> list[str]:
    lines = [f"[{name}]"]
    for f in dataclasses.fields(cls):
        if f.name not in cls.__dataclass_fields__ or "doc" not in f.metadata or f.name == "grid":
            continue  # the grid is a table of its own (_GRID)
        value = f.default
        if name == "sweep" and f.name == "k":
            value = format_k(value)
        assignment = f"{f.name} = {toml_value(value)}"
        lines.append(f"{assignment:<25} # {f.metadata['doc']}")
    return lines


_GRID = """\
[grid]
# Extra sweep axes: any field of the sections above but [engine], with a list of values.
# Cells are the product of all axes with k and n; each row carries its cell's values.
# "optimizer.step_size" = ["1/k", "5/k"]
# "init.kind" = ["xavier", "he"]"""


def default_toml() -> str:
    """The text of `configs/default.toml`: every field, its default and its meaning."""
    lines = [_HEADER, *_table("sweep", Config)]
    for name, cls in SECTIONS.items():
        lines += ["", *_table(name, cls)]
    return "\n".join([*lines, "", _GRID]) + "\n"
