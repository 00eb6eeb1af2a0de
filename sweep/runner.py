"""Runs a sweep end to end: shards -> engine -> classification -> Parquet, with progress."""

import itertools
import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from . import datasets, landscape, plan, status, train
from .analysis import classify, empirical
from .analysis.catalogue import catalogue
from .engine import Engine
from .results import MINIMA, ResultStore, load, rows, write_minima


@dataclass
class Outcome:
    shards_total: int
    shards_skipped: int
    runs_trained: int
    engine: Engine | None


class _ShardBuffer:
    """Finished runs of one shard, until all of them are in."""

    def __init__(self, shard):
        self.shard = shard
        self.parts = []
        self.count = 0

    def add(self, finished, select):
        self.parts.append({key: value[select] for key, value in vars(finished).items()})
        self.count += int(select.sum())

    @property
    def complete(self):
        return self.count == len(self.shard.runs)

    def columns(self):
        return {key: np.concatenate([p[key] for p in self.parts]) for key in self.parts[0]}


def run_sweep(
    config, out, fresh=False, log=print, progress=None, engine=None, only=None, keep_going=False
):
    """Train and classify every shard of `config` not yet in `out`; returns an Outcome.

    Finished shards are written as soon as their last run stops, so an interruption loses
    at most the shards in flight; calling this again resumes from there. `only` limits the
    work to the shards of those names (a cluster task's share). With `keep_going`, a cell
    whose training raises has its unfinished shards marked failed and the next cell goes
    on; the first error is raised at the end.
    """
    shards = plan.shards(config)
    store = ResultStore(out, config, shards, fresh=fresh)
    if fresh:
        status.clear(out)
    mine = [s for s in shards if only is None or s.name in only]
    todo = [s for s in mine if not store.done(s)]
    skipped = len(mine) - len(todo)
    if skipped:
        log(f"{out}: {skipped} of {len(mine)} shards already complete, skipping them")
    if not todo:
        if not (store.root / MINIMA).exists():
            _write_minima_when_complete(store, shards)
        return Outcome(len(shards), skipped, 0, engine)

    engine = engine or Engine(config)
    total = sum(len(s.runs) for s in todo)
    bar = tqdm(
        total=total,
        unit="run",
        disable=None if progress is None else not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    failure = None
    with bar:
        for cell, cell_shards in itertools.groupby(todo, key=lambda s: s.cell):
            buffers = [_ShardBuffer(s) for s in cell_shards]
            status.mark_running(out, [b.shard.name for b in buffers])
            try:
                _train_cell(config, store, engine, cell, buffers, bar)
            except Exception as error:
                unfinished = [b.shard.name for b in buffers if not store.done(b.shard)]
                status.mark_failed(out, unfinished, error)
                if not keep_going:
                    raise
                log(f"error: {cell.label}: {len(unfinished)} shards failed: {error}")
                failure = failure or error
            except BaseException:  # interrupted: these shards are simply pending again
                for b in buffers:
                    if not store.done(b.shard):
                        status.unmark(out, b.shard.name)
                raise
    if failure is not None:
        raise failure
    _write_minima_when_complete(store, shards)
    return Outcome(len(shards), skipped, total, engine)


def _train_cell(config, store, engine, cell, buffers, bar):
    starts = np.array([b.shard.start for b in buffers])
    runs = itertools.chain.from_iterable(b.shard.runs for b in buffers)
    stopped = high_loss = 0
    failure = None
    for finished in engine.train(cell, runs, config.seed):
        owner = np.searchsorted(starts, finished.runs, side="right") - 1
        for index in np.unique(owner):
            buffer = buffers[index]
            buffer.add(finished, owner == index)
            if buffer.complete:
                try:
                    _write_shard(config, store, buffer)
                    status.unmark(store.root, buffer.shard.name)
                except Exception as error:  # this shard is lost; the others still count
                    status.mark_failed(store.root, [buffer.shard.name], error)
                    failure = failure or error
                buffer.parts = []  # keep memory flat over a long sweep
        stopped += len(finished.runs)
        converged = np.isin(finished.reason, train.CONVERGED)
        high_loss += int((converged & (finished.loss > config.classify.global_loss_tol)).sum())
        bar.update(len(finished.runs))
        bar.set_postfix_str(
            f"k={cell.k} n={cell.n} not global {100 * high_loss / stopped:.1f}%", refresh=False
        )
    if failure is not None:
        raise failure


def _write_minima_when_complete(store, shards):
    """The catalogue of minima, once every shard is in (the last cluster task writes it)."""
    if all(store.done(s) for s in shards):
        write_minima(store.root, catalogue(load(store.root)))


def _write_shard(config, store, buffer):
    found = buffer.columns()
    cell = buffer.shard.cell
    if config.problem.kind == "gaussian_relu":
        classified = classify(
            found["weights"],
            found["reason"],
            found["loss"],
            cell.k,
            config.classify,
            landscape.for_problem(config.problem, cell),
        )
    else:
        classified = empirical.classify(
            config,
            cell,
            datasets.make(config.problem, cell, config.seed),
            found["runs"],
            found["weights"],
            found["reason"],
            found["loss"],
            found["watched"],
        )
    store.write(
        buffer.shard,
        rows(
            config,
            buffer.shard,
            runs=found["runs"],
            weights=found["weights"],
            steps=found["steps"],
            newton_steps=found["newton_steps"],
            step_size=found["step_size"],
            stop_reason=[train.REASON_NAMES[r] for r in found["reason"]],
            loss=found["loss"],
            grad_norm=found["grad_norm"],
            found=classified,
        ),
    )
