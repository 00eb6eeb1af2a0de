"""sweep: train, classify, prove and report seed sweeps of teacher-student ReLU networks.

run [CONFIG] [--k 6..20] [--n k+1] [--seeds 1000] [--out DIR] trains a sweep; status DIR
shows its shards; report DIR writes its tables and plots; certify DIR proves its distinct
points; critical --k 6..20 --out DIR finds and proves critical points in fixed-point
spaces; replay DIR --k K --n N --run R re-runs one run; migrate DIR moves a folder of an
earlier version to the current layout.

Bad input ends with one line naming the field and what was expected, and exit status 2; a
failure of the environment (disk, permissions) one line and exit status 1.
"""

import argparse
import functools
import os
import sys
from pathlib import Path

from .. import config as config_module
from .. import reports, runtime
from ..config import ConfigError
from ..config.overrides import parse_axis, parse_setting
from ..reports import plots, proofs_table
from ..results import layout, progress, runs_table, store
from ..results.store import StorageError
from ..version import __version__
from . import cluster
from .replay import replay_stored
from .runner import RunOptions, run_sweep
from .waves import shard_states

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1


def _environment(error):
    """One line for a failure of the environment."""
    if isinstance(error, StorageError):
        return str(error)
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{store.describe(error)}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise ConfigError("arguments", f"valid arguments (see {self.prog} --help)", message)


def _run(args):
    overrides = {}
    if args.k is not None:
        overrides["sweep.k"] = args.k
    if args.n is not None:
        overrides["sweep.n"] = args.n
    if args.seeds is not None:
        overrides["sweep.seeds"] = _int_argument(args.seeds, "--seeds")
    if args.halfwidth is not None:
        overrides["sweep.target_halfwidth"] = _float_argument(args.halfwidth, "--halfwidth")
    if args.seed is not None:
        overrides["sweep.seed"] = _int_argument(args.seed, "--seed")
    if args.max_steps is not None:
        overrides["stop.max_steps"] = _int_argument(args.max_steps, "--max-steps")
    if args.batch_size is not None:
        overrides["engine.batch_size"] = _int_argument(args.batch_size, "--batch-size")
    for item in args.set:
        key, value = parse_setting(item)
        overrides[key] = value
    for item in args.grid:
        axis, values = parse_axis(item)
        overrides[f"grid.{axis}"] = values
    config = config_module.load(args.config, overrides)
    shown = ("sweep.k", "sweep.n", "sweep.seeds")
    settings = {key: value for key, value in overrides.items()
                if key not in shown and not key.startswith("grid.")}  # fmt: skip
    out = (
        Path(args.out)
        if args.out
        else runs_table.default_folder(config.name, args.k, args.n, args.seeds, args.grid, settings)
    )
    if args.launcher == "slurm":
        options = cluster.SlurmOptions(
            tasks=_int_argument(args.tasks, "--tasks"),
            partition=args.partition,
            gpus_per_task=args.gpus_per_task
            and _int_argument(args.gpus_per_task, "--gpus-per-task"),
            cpus_per_task=args.cpus_per_task
            and _int_argument(args.cpus_per_task, "--cpus-per-task"),
            time_limit=args.time,
            slurm_args=tuple(args.slurm_arg),
            wait=args.wait,
            fresh=args.fresh,
        )
        job = cluster.submit(config, out, options)
        if args.wait and job is not None:
            states = shard_states(out)
            return 1 if (~states.state.isin(progress.SETTLED)).any() else 0
        return 0

    print(
        f"sweep {config.name}: k = {','.join(map(str, config.k))}, n = {config.n}, "
        f"{config.seeds} runs per cell -> {out}",
        flush=True,
    )
    runtime.prepare_process()
    options = RunOptions(fresh=args.fresh, progress=None if args.progress else False,
                         release_programs=True)  # fmt: skip
    outcome = run_sweep(config, out, options)
    if outcome.engine is not None:
        counters = outcome.engine.counters
        print(
            f"trained {outcome.runs_trained} runs on {len(outcome.engine.devices)} "
            f"{outcome.engine.devices[0].platform} device(s); useful-step fraction "
            f"{counters.useful_fraction:.2f}"
            + (f"; basin finish: {counters.basin_finished} runs" if counters.basin_attempts else "")
            + (f"; {counters.float32_steps} steps in float32" if counters.float32_steps else "")
        )
        spent = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in counters.seconds.items())
        print(f"host loop: {spent}")
    frame = runs_table.load(out, columns=reports.SUMMARY_INPUT)
    table = reports.summary(frame, interval=reports.interval_of(config))
    print(reports.format_summary(table))
    print(f"results: {out}  (pandas.read_parquet({str(out)!r}))")
    return 0


def _sweep_folder(path):
    return runs_table.open_sweep(path)[0]


def _checked_folder(path):
    """A sweep folder whose damaged, truncated or foreign shard files have been named (one
    line each) and moved aside."""
    folder = _sweep_folder(path)
    store.check_folder(folder, log=_warn)
    return folder


def _warn(line):
    print(line, file=sys.stderr)


def _certify(args):
    from . import certify as prove

    folder = _checked_folder(args.sweep)
    workers = args.workers and _int_argument(args.workers, "--workers")
    table = prove.certify_sweep(folder, workers=workers, progress=sys.stderr.isatty())
    print(proofs_table.format_counts(table, runs_table.load_certified(folder)))
    for row in table[table["certified"] == "failed"].itertuples():
        print(f"not proved: k={row.k} n={row.n} point {row.point} ({row.status}): {row.reason}")
    print(f"certificates: {folder / layout.CATALOGUE}, per run: {folder / layout.CERTIFIED}")
    return 0


def _critical(args):
    from ..config.expressions import parse_k
    from . import critical

    runtime.prepare_process()
    k_values = parse_k(args.k, "--k")
    if 0 in k_values:
        raise ConfigError("--k", "teacher widths >= 1", args.k)
    chosen, extra = critical.parse_types(k_values, args.n, args.types, args.sizes or [])
    starts = _int_argument(args.starts, "--starts")
    workers = args.workers and _int_argument(args.workers, "--workers")
    for k in k_values:
        limit = critical.prove_limit(args.prove_index, k)
        critical.find_critical((k,), args.out, chosen[k], starts, extra, limit, workers,
                               progress=sys.stderr.isatty())  # fmt: skip
    table = runs_table.load(args.out, table="critical", k=list(k_values))
    print(critical.format_table(table))
    if args.sweep:
        catalogue = runs_table.load(_checked_folder(args.sweep), table="catalogue")
        print(critical.format_reached(critical.reached(table, catalogue)))
    print(f"critical points: {Path(args.out) / layout.CRITICAL}")
    return 0


def _migrate(args):
    folder = Path(args.sweep)
    if not (folder / layout.MANIFEST).is_file():
        raise ConfigError("SWEEP", "a sweep results folder (with _manifest.json)", args.sweep)
    moved = layout.migrate(folder) if layout.is_legacy(folder) else 0
    print(f"{folder}: {moved} shards moved to {folder / layout.RUNS}; the layout is current")
    return 0


def _report(args):
    folder = _checked_folder(args.sweep)
    reference = args.reference
    if reference is not None and not Path(reference).is_file():
        raise ConfigError("--reference", "a CSV file of published values", reference)
    compare = [_sweep_folder(other) for other in args.compare]
    text, pngs = reports.write_report(folder, reference, compare)
    print(text)
    for png in pngs:
        print(f"wrote {png}")
    return 0


def _replay(args):
    k, n, run = (
        _int_argument(v, name)
        for v, name in ((args.k, "--k"), (args.n, "--n"), (args.run, "--run"))
    )
    folder = _sweep_folder(args.sweep)
    runtime.prepare_process()
    axes = dict(parse_setting(item, "--at") for item in args.at)
    history, final, stored, cell = replay_stored(folder, k, n, run, axes)
    target = folder / layout.REPLAY
    target.mkdir(exist_ok=True)
    variant = f"-g{cell.variant:02d}" if cell.axes else ""  # the cell's [grid] values
    stem = target / f"k{k:02d}-n{n:02d}{variant}-r{run:07d}"
    history.assign(min_eig_at_end=final["min_eig"]).to_parquet(f"{stem}.parquet", index=False)
    plots.trajectory(
        history,
        f"{stem}.png",
        f"k = {k}, n = {n}, run {run}: {final['status']} after {final['steps']} steps",
    )
    same = final["status"] == stored["status"] and abs(final["loss"] - stored["loss"]) <= 1e-9
    print(
        f"replayed k={k} n={n} run {run}: {final['status']}, loss {final['loss']:.10g}, "
        f"{final['steps']} steps, smallest Hessian eigenvalue {final['min_eig']:.6g}"
    )
    print(f"stored:   {stored['status']}, loss {stored['loss']:.10g}, {stored['steps']} steps")
    print(f"trajectory: {stem}.parquet, {stem}.png")
    if not same:
        print("error: the replay does not end where the stored row says", file=sys.stderr)
        return 1
    print("the replay matches the stored row (status, loss to 1e-9)")
    return 0


def _status(args):
    folder = _checked_folder(args.sweep)
    states = shard_states(folder)
    print(f"{folder}:")
    print(progress.format_status(states))
    return 0


def _float_argument(text, name):
    try:
        return float(text)
    except ValueError:
        raise ConfigError(name, "a number", text) from None


def _int_argument(text, name):
    try:
        return int(text)
    except ValueError:
        raise ConfigError(name, "an integer", text) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweep", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--version", action="version", version=f"sweep {__version__}")
    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="show the traceback of an error (or SWEEP_DEBUG=1)",
    )  # fmt: skip
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (or SWEEP_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    run.set_defaults(handler=_run)

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
    summary.set_defaults(handler=_report)

    where = commands.add_parser("status", help="shards done, running, failed and pending")
    where.add_argument("sweep", help="a results folder, e.g. results/default")
    where.set_defaults(handler=_status)

    again = commands.add_parser("replay", help="re-run one run and record its trajectory")
    again.add_argument("sweep", help="a results folder, e.g. results/default")
    again.add_argument("--k", required=True, help="the run's teacher width")
    again.add_argument("--n", required=True, help="the run's student width")
    again.add_argument("--run", required=True, help="the run's number within its cell")
    again.add_argument(
        "--at", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="the cell's value of a [grid] axis, e.g. --at optimizer.step_size=1/k",
    )  # fmt: skip
    again.set_defaults(handler=_replay)

    prove = commands.add_parser(
        "certify", help="prove every distinct minimum and saddle of a closed-form sweep"
    )
    prove.add_argument("sweep", help="a results folder, e.g. results/default")
    prove.add_argument("--workers", help="processes (default: one per core)")
    prove.set_defaults(handler=_certify)

    search = commands.add_parser(
        "critical", help="critical points in fixed-point spaces, with their proofs"
    )
    search.add_argument("--k", required=True, help='teacher widths, e.g. "6..20"')
    search.add_argument("--out", required=True, help="a folder for the tables")
    search.add_argument("--n", default="k", help="student width: k, k+1 or k+2")
    search.add_argument(
        "--types", default="k,pairs,triples",
        help="isotropy types to search: k (Delta S_k), pairs, triples (default: all three)",
    )  # fmt: skip
    search.add_argument(
        "--sizes", action="append", metavar="P+Q+...",
        help='one more type by its block sizes in k, e.g. "1+k-1" (repeatable); '
        'with --types "" only these',
    )  # fmt: skip
    search.add_argument("--starts", default="96", help="Newton starts per type (96)")
    search.add_argument(
        "--prove-index",
        help="prove only points with at most this many negative eigenvalues, e.g. 0 "
        "(minima) or k; -1 proves none (default: every point)",
    )
    search.add_argument("--workers", help="proof processes (default: one per core)")
    search.add_argument("--sweep", help="a sweep folder: which points its runs reached")
    search.set_defaults(handler=_critical)

    move = commands.add_parser(
        "migrate", help="move a folder written by an earlier version to the current layout"
    )
    move.add_argument("sweep", help="a results folder, e.g. results/default")
    move.set_defaults(handler=_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("SWEEP_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser()
        if not (sys.argv[1:] if argv is None else argv):
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        debug = debug or args.debug
        if getattr(args, "config", None) is not None and not os.path.isfile(args.config):
            missing = "no such file" if not os.path.exists(args.config) else "not a file"
            raise ConfigError("CONFIG", None, None,
                              detail=f"CONFIG: {missing}: {args.config!r} (a TOML config "
                              "file, e.g. configs/safran_shamir_2018.toml)")  # fmt: skip
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StorageError, OSError) as error:  # the environment: disk, permissions, mounts
        if debug:
            raise
        print(f"error: {_environment(error)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print(
            "interrupted: finished shards are saved; run the same command to resume",
            file=sys.stderr,
        )
        return 130
