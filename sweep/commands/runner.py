"""Runs a sweep end to end: shards -> engine -> classification -> Parquet, with progress."""

import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .. import problems, programs
from ..config import Config, shard_list
from ..config.shards import Shard
from ..diagnostics.catalogue import CATALOGUE_INPUT, catalogue
from ..engine.scheduler import Engine
from ..outcomes import CONVERGED, Finished
from ..results import progress
from ..results.layout import CATALOGUE
from ..results.runs_table import load, rows
from ..results.store import ResultStore, StorageError, write_catalogue
from .waves import Waves, adaptive


@dataclass
class Outcome:
    shards_total: int
    shards_skipped: int
    runs_trained: int
    engine: Engine | None


@dataclass(frozen=True)
class RunOptions:
    """How `run_sweep` goes about a sweep (not what it computes)."""

    fresh: bool = False  # replace what the folder holds
    progress: bool | None = None  # a bar: None = only on a terminal
    only: frozenset | None = None  # shard names to train (a cluster task's share); None: all
    keep_going: bool = False  # a failing cell marks its shards failed; the others go on
    # Drop a cell's compiled programs before the next cell (`programs.release_programs`):
    # for processes that run only sweeps (the CLI, SLURM tasks), whose memory then stays
    # flat over many cells.
    release_programs: bool = False
    log: Callable[[str], None] = print


class _ShardBuffer:
    """Finished runs of one shard, until all of them are in."""

    def __init__(self, shard: Shard):
        self.shard = shard
        self.parts = []
        self.count = 0

    def add(self, finished: Finished, select: np.ndarray) -> None:
        self.parts.append(finished.select(select))
        self.count += int(select.sum())

    @property
    def complete(self) -> bool:
        return self.count == len(self.shard.runs)

    def finished(self) -> Finished:
        return Finished.concatenate(self.parts)


def run_sweep(
    config: Config, out: str | Path, options: RunOptions = RunOptions(), engine: Engine = None
) -> Outcome:
    """Train and classify every shard of `config` not yet in `out`; returns an Outcome.

    Finished shards are written as soon as their last run stops, so an interruption loses
    at most the shards in flight; calling this again resumes from there. `options.only`
    limits the work to the shards of those names (a cluster task's share). With
    `options.keep_going`, a cell whose training raises has its unfinished shards marked
    failed and the next cell goes on; the first error is raised at the end.
    """
    fresh, log, only = options.fresh, options.log, options.only
    shards = shard_list(config)
    store = ResultStore(out, config, shards, fresh=fresh, log=log)
    if fresh:
        progress.clear(out)
    mine = [s for s in shards if only is None or s.name in only]
    plan = Waves(store.root, config)  # one count per finished shard for the whole call
    unneeded = plan.unneeded(shards)
    todo = [s for s in mine if not store.done(s) and s.name not in unneeded]
    skipped = len(mine) - len(todo)
    if skipped:
        log(f"{out}: {skipped} of {len(mine)} shards already complete, skipping them")
    if not todo:
        if not _readable(store.root / CATALOGUE):
            _write_catalogue_when_complete(store, shards, plan)
        return Outcome(len(shards), skipped, 0, engine)

    engine = engine or Engine(config)
    total = sum(len(s.runs) for s in todo)
    bar = tqdm(
        total=total,
        unit="run",
        disable=not _show_bar(options.progress),
        file=sys.stderr,
        dynamic_ncols=True,
    )
    failure = None
    with bar:
        for index, (cell, cell_shards) in enumerate(itertools.groupby(todo, lambda s: s.cell)):
            if index and options.release_programs:
                programs.release_programs()  # the previous cell's
            started = []  # the cell's shards marked running
            try:
                if adaptive(config):
                    _train_in_waves(plan, store, engine, cell, list(cell_shards), bar, started)
                else:
                    _train_shards(config, store, engine, cell, list(cell_shards), bar, started)
            except Exception as error:
                unfinished = [s.name for s in started if not store.done(s)]
                _quietly(progress.mark_failed, out, unfinished, error)
                if not options.keep_going or isinstance(error, StorageError):
                    raise  # nowhere to write: stop now, whatever the other cells
                log(f"error: {cell.describe()}: {len(unfinished)} shards failed: {error}")
                failure = failure or error
            except BaseException:  # interrupted: these shards are simply pending again
                for shard in started:
                    if not store.done(shard):
                        progress.unmark(out, shard.name)
                raise
    if failure is not None:
        raise failure
    try:
        _write_catalogue_when_complete(store, shards, plan)
        if config.classify.certify and _complete(store, shards, plan):
            from .certify import certify_sweep

            certify_sweep(store.root, log=log)
    except OSError as error:
        raise StorageError(store.root, error) from error
    trained = sum(len(s.runs) for s in todo if store.done(s))
    return Outcome(len(shards), skipped, trained, engine)


def _show_bar(wanted: bool | None) -> bool:
    """A bar where someone watches: on a terminal, or in a notebook (a kernel's streams are
    no terminal, and tqdm.auto draws the notebook's own bar there)."""
    if wanted is not None:
        return wanted
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def _readable(path: Path) -> bool:
    try:
        pq.read_metadata(path)
    except (OSError, ValueError):  # missing, or damaged: pyarrow's errors
        return False
    return True


def _quietly(record, *args):
    """Record a shard state where the disk allows it (a full disk must not hide the error
    that stopped the sweep)."""
    try:
        record(*args)
    except OSError:
        pass


def _train_shards(config, store, engine, cell, shards, bar, started):
    """Train the given shards of a cell at once (continuous batching over all their runs)."""
    progress.mark_running(store.root, [s.name for s in shards])
    started += shards
    _train_cell(config, store, engine, cell, [_ShardBuffer(s) for s in shards], bar)


def _train_in_waves(plan, store, engine, cell, todo, bar, started):
    """An adaptive sweep's cell: one shard (wave) at a time, in run order, until the cell's
    confidence sequence is tight (`waves.py`) or its shards run out."""
    config = store.config
    shards = [s for s in shard_list(config) if s.cell == cell]
    while True:
        wave, unneeded = plan.next_wave(shards)
        if wave is None or wave not in todo:  # settled, or another task's share
            bar.total -= sum(len(s.runs) for s in unneeded if s in todo)
            bar.refresh()
            return
        _train_shards(config, store, engine, cell, [wave], bar, started)


def _train_cell(config, store, engine, cell, buffers, bar):
    starts = np.array([b.shard.start for b in buffers])
    runs = itertools.chain.from_iterable(b.shard.runs for b in buffers)
    problem = problems.for_cell(config, cell)
    store.write_teacher(cell, problem.data.teacher)
    stopped = high_loss = 0
    failure = None
    for finished in engine.train(problem, runs):
        owner = np.searchsorted(starts, finished.runs, side="right") - 1
        for index in np.unique(owner):
            buffer = buffers[index]
            buffer.add(finished, owner == index)
            if buffer.complete:
                try:
                    _write_shard(store, buffer, problem, engine.counters)
                    progress.unmark(store.root, buffer.shard.name)
                except OSError as error:  # the folder takes no more: stop training now
                    raise StorageError(store.root, error) from error
                except Exception as error:  # this shard is lost; the others still count
                    progress.mark_failed(store.root, [buffer.shard.name], error)
                    failure = failure or error
                buffer.parts = []  # keep memory flat over a long sweep
        stopped += len(finished.runs)
        converged = np.isin(finished.reason, CONVERGED)
        high = finished.loss > problem.config.classify.global_loss_tol
        high_loss += int((converged & high).sum())
        bar.update(len(finished.runs))
        bar.set_postfix_str(
            f"{cell.describe()} not global {100 * high_loss / stopped:.1f}%", refresh=False
        )
    if failure is not None:
        raise failure


def _complete(store, shards, plan) -> bool:
    """Every shard is done, or not needed by an adaptive sweep (`waves.py`)."""
    unneeded = plan.unneeded(shards)
    return all(store.done(s) or s.name in unneeded for s in shards)


def _write_catalogue_when_complete(store, shards, plan):
    """The catalogue of minima, once every shard is in (the last cluster task writes it).
    Only kinds whose loss has the permutation symmetries are catalogued."""
    if _complete(store, shards, plan):
        runs = load(store.root, columns=[*CATALOGUE_INPUT, "problem"])  # with the axes
        kind = problems.KINDS[store.config.problem.kind]
        if not kind.catalogues(store.config):
            return
        table = catalogue(runs, spectra=kind.has_spectra(store.config))
        write_catalogue(store.root, table)


def _write_shard(store, buffer, problem, counters):
    ends = buffer.finished()
    with counters.timed("classify"):
        found = problem.classify(ends)
    with counters.timed("writing"):
        store.write(buffer.shard, rows(problem.config, buffer.shard, ends, found))
