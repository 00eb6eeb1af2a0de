"""The command line's arguments: the parser of every command, and the checks of numbers
given as text (each a one-line `ConfigError` naming the argument)."""

import argparse
import functools

from ..config import ConfigError
from ..version import __version__

DESCRIPTION = (
    "Train, classify, prove and report seed sweeps of teacher-student ReLU networks. "
    "run trains a sweep; status shows its shards; report writes its tables and plots; "
    "certify proves its distinct points; critical finds and proves critical points in "
    "fixed-point spaces; replay re-runs one run; migrate moves a folder of an earlier "
    "version to the current layout."
)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise ConfigError("arguments", f"valid arguments (see {self.prog} --help)", message)


def float_argument(text, name):
    try:
        return float(text)
    except ValueError:
        raise ConfigError(name, "a number", text) from None


def int_argument(text, name):
    try:
        return int(text)
    except ValueError:
        raise ConfigError(name, "an integer", text) from None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sweep", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sweep {__version__}")
    debug = Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="show the traceback of an error (or SWEEP_DEBUG=1)",
    )  # fmt: skip
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (or SWEEP_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.add_parser = functools.partial(commands.add_parser, parents=[debug])
    run = commands.add_parser("run", help="train, classify and store a sweep")
    run.add_argument("config", nargs="?", help="a TOML config (default: the embedded default)")
    run.add_argument("--k", help="teacher widths: 6..20, 6,8,10 or 6")
    run.add_argument("--n", help="student widths as expressions in k: k, k+1, k..k+2")
    run.add_argument("--seeds", help="runs per cell")
    run.add_argument("--seed", help="root seed of the sweep")
    run.add_argument(
        "--halfwidth",
        help="adaptive: runs in waves until each cell's 95%% interval is this tight (0.01)",
    )
    run.add_argument("--max-steps", help="largest number of steps per run")
    run.add_argument("--batch-size", help="runs trained at once (0: backend default)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set stop.polish_after=0 (repeatable)",
    )
    run.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="SECTION.FIELD=V1,V2",
        help="an extra sweep axis, e.g. --grid optimizer.step_size=1/k,5/k (repeatable)",
    )
    run.add_argument("--out", help="results folder (default: results/<name>[_overrides])")
    run.add_argument("--fresh", action="store_true", help="replace what --out holds")
    slurm = run.add_argument_group("cluster (--launcher slurm)")
    run.add_argument(
        "--launcher", choices=("local", "slurm"), default="local",
        help="local: train here on all devices; slurm: submit a job array (submitit)",
    )  # fmt: skip
    slurm.add_argument("--tasks", default="4", help="array tasks (default 4)")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's default)")
    slurm.add_argument("--gpus-per-task", help="GPUs per task; each task uses all it gets")
    slurm.add_argument("--cpus-per-task", help="CPU cores per task")
    slurm.add_argument("--time", default="02:00:00", help="time limit per task")
    slurm.add_argument(
        "--slurm-arg", action="append", default=[], metavar="KEY=VALUE",
        help="any other sbatch option, e.g. --slurm-arg constraint=a100 (repeatable)",
    )  # fmt: skip
    slurm.add_argument("--wait", action="store_true", help="block until the array finishes")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    summary = commands.add_parser("report", help="tables and PNG plots of a finished sweep")
    summary.add_argument("sweep", help="a results folder, e.g. results/default")
    summary.add_argument(
        "--reference",
        help="CSV of published values (default: Safran & Shamir's Table 1, where the sweep "
        "follows their protocol)",
    )
    summary.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="DIR",
        help="other sweeps of 1-D students to set beside this one (essentially linear runs)",
    )

    where = commands.add_parser("status", help="shards done, running, failed and pending")
    where.add_argument("sweep", help="a results folder, e.g. results/default")

    again = commands.add_parser("replay", help="re-run one run and record its trajectory")
    again.add_argument("sweep", help="a results folder, e.g. results/default")
    again.add_argument("--k", required=True, help="the run's teacher width")
    again.add_argument("--n", required=True, help="the run's student width")
    again.add_argument("--run", required=True, help="the run's number within its cell")
    again.add_argument(
        "--at", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="the cell's value of a [grid] axis, e.g. --at optimizer.step_size=1/k",
    )  # fmt: skip

    prove = commands.add_parser(
        "certify", help="prove every distinct minimum and saddle of a closed-form sweep"
    )
    prove.add_argument("sweep", help="a results folder, e.g. results/default")
    prove.add_argument("--workers", help="processes (default: one per core)")

    search = commands.add_parser(
        "critical", help="critical points in fixed-point spaces, with their proofs"
    )
    search.add_argument("--k", required=True, help='teacher widths, e.g. "6..20"')
    search.add_argument("--out", required=True, help="a folder for the tables")
    search.add_argument("--n", default="k", help="student width: k, k+1 or k+2")
    search.add_argument(
        "--types", default=None,
        help="isotropy types to search: k (Delta S_k), pairs, triples, thin (the triples "
        "with a block of 1 or 2 neurons), splits (default: k,pairs,triples up to k = 30, "
        "k,pairs,thin above)",
    )  # fmt: skip
    search.add_argument(
        "--sizes", action="append", metavar="P+Q+...",
        help='one more type by its block sizes in k, e.g. "1+k-1" (repeatable); '
        'with --types "" only these',
    )  # fmt: skip
    search.add_argument("--starts", default="96", help="Newton starts per type (96)")
    search.add_argument(
        "--no-follow", action="store_true",
        help="random starts only: do not seed each type with the points of its neighbouring "
        "types and of k - 1",
    )  # fmt: skip
    search.add_argument(
        "--activation", default="relu",
        help="the students' and teacher's activation: relu (default), erf, normal_cdf, tanh, "
        "sigmoid, softplus, gelu, silu, linear, quadratic, or module.function",
    )  # fmt: skip
    search.add_argument(
        "--prove-index",
        help="prove only points with at most this many negative eigenvalues, e.g. 0 "
        "(minima) or k; -1 proves none (default: every point)",
    )
    search.add_argument("--workers", help="proof processes (default: one per core)")
    search.add_argument("--sweep", help="a sweep folder: which points its runs reached")

    move = commands.add_parser(
        "migrate", help="move a folder written by an earlier version to the current layout"
    )
    move.add_argument("sweep", help="a results folder, e.g. results/default")
    return parser
