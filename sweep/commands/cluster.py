"""Run a sweep on SLURM: one job array through submitit, every task a share of the shards.

The shard list is deterministic (`config.shard_list`), so a submission needs no coordination:
the shards still missing are dealt round-robin to the array tasks (each cell is spread
over all tasks), every task trains its share with the local engine on the devices SLURM
gave it and writes into the same results folder. Files appear whole or not at all, so a
cancelled, preempted or failed task loses only the shards it had in flight, and the same
command submitted again runs exactly what is missing. Where the cluster preempts with a
signal, submitit requeues the task (`Task.checkpoint`), which then skips what is done.
"""

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ..config import Config, ConfigError, shard_list
from ..config import from_dict as config_from_dict
from ..results import progress
from ..results.layout import SLURM
from ..results.store import ResultStore
from .waves import Waves, adaptive, shard_states

# Each task's environment: JAX must not grab GPU memory it does not use (several tasks may
# share a node), and it sees only the GPUs SLURM bound to the task (CUDA_VISIBLE_DEVICES).
TASK_SETUP = ["export XLA_PYTHON_CLIENT_PREALLOCATE=false", "export PYTHONUNBUFFERED=1"]
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")


class Task:
    """One array task: trains the shards named in its share, then returns a summary."""

    def __init__(self, raw_config: dict, out: str | Path):
        self.raw_config = raw_config
        self.out = str(out)

    def __call__(self, names: list[str]) -> str:
        from .. import runtime
        from .runner import RunOptions, run_sweep  # the worker imports JAX only on its node

        runtime.prepare_process()
        config = config_from_dict(self.raw_config)
        options = RunOptions(only=frozenset(names), keep_going=True, progress=False,
                             release_programs=True)  # fmt: skip
        outcome = run_sweep(config, self.out, options)
        return f"{outcome.runs_trained} runs trained, {outcome.shards_skipped} shards were done"

    def checkpoint(self, names: list[str]) -> object:
        """Preempted or timed out: requeue the same share (done shards are skipped)."""
        return _submitit().helpers.DelayedSubmission(Task(self.raw_config, self.out), names)


def _submitit():
    """submitit, imported when first needed. Unconfigured, its warnings reach stderr through
    logging; otherwise it binds its log handlers to the sys.stdout/stderr of import time (a
    test's captured stream, say)."""
    os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
    import submitit

    return submitit


def _fail(message):
    return ConfigError("--launcher", None, None, detail=f"--launcher slurm: {message}")


def _slurm(command, what):
    """Run a SLURM client command; a one-line ConfigError if it cannot reach the scheduler."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        raise _fail(f"{what} ({command[0]}: {error})") from None
    if out.returncode != 0:
        message = (out.stderr or out.stdout).strip().splitlines()
        raise _fail(f"{what} ({message[-1] if message else 'no answer'})")
    return out.stdout


def check_scheduler(partition: str | None = None) -> int:
    """sbatch present, controller reachable, partition known; returns the node count."""
    if shutil.which("sbatch") is None:
        raise _fail("sbatch not found on PATH (run from a SLURM login node)")
    listing = _slurm(["sinfo", "-h", "-o", "%P %n"], "cannot reach the SLURM controller")
    partitions, nodes = set(), set()
    for line in listing.split("\n"):
        if line.strip():
            name, node = line.split()
            partitions.add(name.rstrip("*"))
            nodes.add(node)
    if partition is not None and partition not in partitions:
        raise ConfigError("--partition", f"one of {', '.join(sorted(partitions))}", partition)
    return len(nodes)


def check_shared(out: str | Path, nodes: int) -> None:
    """With several nodes, the results folder must be on a filesystem they all see."""
    path = Path(out).resolve()
    local = any(path == Path(p) or Path(p) in path.parents for p in NODE_LOCAL)
    if nodes > 1 and local:
        raise ConfigError(
            "--out", "a folder on a filesystem shared by all nodes", f"{out} (node-local)"
        )


def parse_time(text: str) -> int:
    """SLURM time ("90", "02:00:00", "1-12:00:00", "30:00") -> minutes."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text or "")
    if not match:
        raise ConfigError("--time", "minutes or [D-]HH:MM:SS, e.g. 02:00:00", text)
    days, first, second, third = (int(g) if g else None for g in match.groups())
    if third is not None:
        minutes = first * 60 + second + (third > 0)
    elif second is not None:
        minutes = first * 60 + second if days else first + (second > 0)
    else:
        minutes = first * 60 if days else first
    return (days or 0) * 24 * 60 + minutes


def parse_slurm_args(items: tuple[str, ...]) -> dict[str, str]:
    """["constraint=a100", "qos=high"] -> {"constraint": "a100", "qos": "high"}."""
    found = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ConfigError("--slurm-arg", "KEY=VALUE (an sbatch option without --)", item)
        found[key.strip().lstrip("-").replace("-", "_")] = value
    return found


def deal(names: list[str], tasks: int, whole_cells: bool = False) -> list[list[str]]:
    """Round-robin shares: task i gets names i, i + tasks, ... (cells spread over tasks).
    With `whole_cells` (adaptive sweeps, whose waves run in order) each cell's shards go
    to one task, the cells dealt round-robin."""
    if not whole_cells:
        return [names[i::tasks] for i in range(tasks)]
    cells = [list(group) for _, group in itertools.groupby(names, _cell_of)]
    return [[name for cell in cells[i::tasks] for name in cell] for i in range(tasks)]


def _cell_of(name: str) -> str:
    return name.rsplit("-r", 1)[0]  # "k06-n06-d06-r0000000-0000250" -> "k06-n06-d06"


@dataclass(frozen=True)
class SlurmOptions:
    """How a sweep is submitted (the CLI's cluster options)."""

    tasks: int = 4  # array tasks
    partition: str | None = None  # None: the cluster's default
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    time_limit: str = "02:00:00"  # per task, SLURM's format
    slurm_args: tuple[str, ...] = ()  # other sbatch options as KEY=VALUE
    wait: bool = False  # block until the array has finished
    fresh: bool = False  # replace what the results folder holds


def submit(
    config: Config,
    out: str | Path,
    options: SlurmOptions = SlurmOptions(),
    log: Callable[[str], None] = print,
) -> str | None:
    """Submit the missing shards of a sweep as one job array; returns the job id (or None)."""
    tasks, partition = options.tasks, options.partition
    if tasks < 1:
        raise ConfigError("--tasks", "an integer >= 1", tasks)
    nodes = check_scheduler(partition)
    check_shared(out, nodes)
    minutes = parse_time(options.time_limit)
    extra = parse_slurm_args(options.slurm_args)
    shards = shard_list(config)
    fresh = options.fresh
    store = ResultStore(out, config, shards, fresh=fresh)
    if fresh:
        progress.clear(out)
    unneeded = Waves(out, config).unneeded(shards)
    missing = [s.name for s in shards if not store.done(s) and s.name not in unneeded]
    if not missing:
        log(f"{out}: all {len(shards)} shards are done; nothing to submit")
        return None
    whole_cells = adaptive(config)
    tasks = min(tasks, len({_cell_of(name) for name in missing}) if whole_cells else len(missing))

    executor = _submitit().AutoExecutor(folder=Path(out) / SLURM / "%j", cluster="slurm")
    parameters = dict(
        name=f"sweep-{config.name}",
        timeout_min=minutes,
        slurm_array_parallelism=tasks,
        slurm_setup=TASK_SETUP,
        slurm_additional_parameters=extra,
    )
    if partition:
        parameters["slurm_partition"] = partition
    if options.gpus_per_task:
        parameters["slurm_gpus_per_task"] = options.gpus_per_task
    if options.cpus_per_task:
        parameters["cpus_per_task"] = options.cpus_per_task
    executor.update_parameters(**parameters)
    try:
        task = Task(config.to_raw(), Path(out).resolve())  # tasks may start elsewhere
        jobs = executor.map_array(task, deal(missing, tasks, whole_cells=whole_cells))
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or error.output or b"").decode(errors="replace").strip().splitlines()
        raise _fail(f"sbatch refused the job ({lines[-1] if lines else error})") from None
    job_id = jobs[0].job_id.split("_")[0]
    log(
        f"submitted job array {job_id}: {tasks} tasks for {len(missing)} shards "
        f"({len(shards) - len(missing)} already done)\n"
        f"  watch: squeue -j {job_id}   |   {sys.executable} -m sweep status {out}\n"
        f"  logs:  {Path(out) / SLURM / job_id}_*"
    )
    if options.wait:
        wait_for(job_id, out, log=log)
    return job_id


# squeue may not answer for a while on a busy controller: the wait asks again this many
# times (one poll apart) before it stops without an answer.
UNANSWERED_POLLS = 15


def _queued(job_id, unanswered: list[int]) -> bool:
    """Whether any task of the job is still pending or running. Without an answer from
    squeue for UNANSWERED_POLLS polls in a row the wait stops; `status` still tells."""
    live = progress.live_slurm_jobs()
    if live is None:
        unanswered[0] += 1
        return unanswered[0] < UNANSWERED_POLLS and shutil.which("squeue") is not None
    unanswered[0] = 0
    return job_id in live


def wait_for(
    job_id: str, out: str | Path, poll: float = 2.0, log: Callable[[str], None] = print
) -> pd.DataFrame:
    """Block until the array has left the queue, with a bar over shards done."""
    total = len(shard_states(out))
    unanswered = [0]
    with tqdm(total=total, unit="shard", file=sys.stderr, disable=None) as bar:
        while True:
            states = shard_states(out)
            done = int(states.state.isin(progress.SETTLED).sum())
            bar.update(done - bar.n)
            if not _queued(job_id, unanswered):
                break
            time.sleep(poll)
    states = shard_states(out)
    bar.update(int(states.state.isin(progress.SETTLED).sum()) - bar.n)
    log(progress.format_status(states))
    return states
