"""sweep: train, classify, prove and report seed sweeps of teacher-student ReLU networks.

run [CONFIG] [--k 6..20] [--n k+1] [--seeds 1000] [--out DIR] trains a sweep; status DIR
shows its shards; report DIR writes its tables and plots; certify DIR proves its distinct
points; critical --k 6..20 --out DIR finds and proves critical points in fixed-point
spaces; replay DIR --k K --n N --run R re-runs one run; migrate DIR moves a folder of an
earlier version to the current layout.

Bad input ends with one line naming the field and what was expected, and exit status 2; a
failure of the environment (disk, permissions) one line and exit status 1.
"""

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
from . import cluster
from .arguments import build_parser, float_argument, int_argument
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


def _run(args):
    overrides = {}
    if args.k is not None:
        overrides["sweep.k"] = args.k
    if args.n is not None:
        overrides["sweep.n"] = args.n
    if args.seeds is not None:
        overrides["sweep.seeds"] = int_argument(args.seeds, "--seeds")
    if args.halfwidth is not None:
        overrides["sweep.target_halfwidth"] = float_argument(args.halfwidth, "--halfwidth")
    if args.seed is not None:
        overrides["sweep.seed"] = int_argument(args.seed, "--seed")
    if args.max_steps is not None:
        overrides["stop.max_steps"] = int_argument(args.max_steps, "--max-steps")
    if args.batch_size is not None:
        overrides["engine.batch_size"] = int_argument(args.batch_size, "--batch-size")
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
            tasks=int_argument(args.tasks, "--tasks"),
            partition=args.partition,
            gpus_per_task=args.gpus_per_task
            and int_argument(args.gpus_per_task, "--gpus-per-task"),
            cpus_per_task=args.cpus_per_task
            and int_argument(args.cpus_per_task, "--cpus-per-task"),
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
    workers = args.workers and int_argument(args.workers, "--workers")
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
    starts = int_argument(args.starts, "--starts")
    workers = args.workers and int_argument(args.workers, "--workers")
    critical.find_critical(k_values, args.out, chosen, starts, extra,
                           lambda k: critical.prove_limit(args.prove_index, k), workers,
                           progress=sys.stderr.isatty(), activation=args.activation,
                           follow=not args.no_follow)  # fmt: skip
    table = runs_table.load(args.out, table="critical", k=list(k_values))
    table = table[table["activation"] == args.activation]
    print(critical.format_table(table))
    if len(k_values) > 1 and table["family"].notna().any():
        print(critical.format_families(table))
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
        int_argument(v, name) for v, name in ((args.k, "--k"), (args.n, "--n"), (args.run, "--run"))
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


HANDLERS = {
    "run": _run, "report": _report, "status": _status, "replay": _replay,
    "certify": _certify, "critical": _critical, "migrate": _migrate,
}  # fmt: skip


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
        return HANDLERS[args.command](args)
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
