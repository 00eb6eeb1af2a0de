"""`make bench`: `sweep` against what users write instead, side by side on this machine.

Reference workload: k = n in {8, 12, 16}, 512 runs each, the Safran-Shamir protocol
(Xavier init, GD with step 5/k, stop at |grad| <= 1e-12), at most 100,000 steps, float64.

- sweep: `python -m sweep run ...` end to end in a fresh process (start-up, compilation,
  classification and Parquet included), first with an empty compilation cache (cold),
  then again with the cache it left (warm). Its fixed-checkpoint Newton polish is off;
  its basin finish (`sweep/basin.py`) is on: it ends a run where plain gradient descent
  would (same end point to 1e-9), and its cost counts in the useful-step fraction.
- PyTorch, batched: all runs of a cell in one tensor, closed-form gradient, lockstep.
- NumPy, per run: one run at a time until it converges, as the papers' code does. Too slow
  to run in full: a sample of runs per cell is timed and the time per step is multiplied
  by the steps all runs of the cell need (the label says so).
- JAX, lockstep: `vmap` over all runs of a cell in one jitted loop, no refill.

The peers start from the same initial weights; their final points are classified by the
same float64 checks, and the spurious counts must agree with sweep's (the bench fails
otherwise). Also measured: the step throughput at k = n = 20 against the PyTorch step
and against the same segment without CPU chunks (`sweep/programs/chunks.py`);
the step's GFLOP/s at k = 8, 20 and 50 (XLA's own flop count) against a large float64
matrix product on the same machine; and the peak RSS of a 100,000-run sweep at k = 6.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import peers
import torch

from sweep import config as config_module
from sweep import problems, runtime
from sweep.engine import run_state, segments, step
from sweep.engine.scheduler import Engine, train_spec
from sweep.engine.starts import CellArgs, start_runs
from sweep.objectives import gaussian
from sweep.objectives.initializers import initial_weights, run_key
from sweep.objectives.population import PopulationLoss
from sweep.outcomes import Finished, StopReason
from sweep.results import runs_table

runtime.prepare_process()  # as the CLI does: every core, float64, the compilation cache

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "safran_shamir_2018.toml"


def run_sweep_process(ks, runs, max_steps, out, cache, extra=()):
    """Time `python -m sweep run` in a fresh process; returns (seconds, stdout, peak RSS MB)."""
    env = {**os.environ, "SWEEP_JAX_CACHE": str(cache)}
    command = [
        sys.executable,
        "-m",
        "sweep",
        "run",
        str(CONFIG),
        "--k",
        ks,
        "--seeds",
        str(runs),
        "--max-steps",
        str(max_steps),
        "--out",
        str(out),
        "--fresh",
        "--no-progress",
        "--set",
        "stop.polish_after=0",
        *extra,
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"sweep failed:\n{stdout}")
    return seconds, stdout, usage.ru_maxrss / 1024


def useful_fraction(stdout):
    found = re.search(r"useful-step fraction ([0-9.]+)", stdout)
    return float(found.group(1)) if found else float("nan")


def initial_points(config, cell, runs):
    def one(r):
        key = run_key(config.seed, cell.k, cell.n, cell.d, r)
        return initial_weights(key, cell.n, cell.d, cell.init_scale)

    return np.asarray(jax.jit(jax.vmap(one))(np.arange(runs)))


def spurious_count(config, cell, weights, steps):
    """Classify peer final points exactly as sweep classifies its own."""
    teacher = gaussian.orthonormal_teacher(cell.k, cell.d)
    loss = np.array([float(gaussian.loss(w, teacher)) for w in weights])
    reason = np.where(steps < config.stop.max_steps, StopReason.GRAD, StopReason.MAX_STEPS)
    found = problems.for_cell(config, cell).classify(Finished.at(weights, loss, reason))
    return int(np.sum(np.asarray(found.status) == "spurious"))


def timed(function, *args):
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


@dataclasses.dataclass(frozen=True)
class WholeSlice(PopulationLoss):
    """The closed form without CPU chunks: each device steps its whole slice of the batch
    at once, as the engine did before `programs.chunk_runs`."""

    def chunk_floats(self):
        return None


def segment_time(k, batch, steps, spec, problem, engine):
    """Microseconds per run-step of `train_segment` from the runs' starts; and the state."""
    teacher = gaussian.orthonormal_teacher(k)
    state = run_state.empty_state(spec, batch, (k, k))
    runs = np.arange(batch)
    state = start_runs(state, np.ones(batch, bool), runs, CellArgs.of(problem), teacher, spec)
    state = jax.device_put(state, engine.sharding)
    state, _ = segments.train_segment(state, teacher, spec, 5, engine.mesh)  # compile
    state.reason.block_until_ready()
    start = time.perf_counter()
    state, _ = segments.train_segment(state, teacher, spec, steps, engine.mesh)
    state.reason.block_until_ready()
    return (time.perf_counter() - start) / steps / batch * 1e6, state


def throughput(k, batch, steps=200):
    """Microseconds per run-step at k = n: sweep's segment against the same segment
    without chunks (the previous layout) and against the PyTorch step."""
    config = config_module.load(str(CONFIG), {"sweep.k": str(k)})
    engine = Engine(config)
    cell = config_module.cells(config)[0]
    problem = problems.for_cell(config, cell)
    # Every run keeps stepping: no gradient stop, no pause for the basin finish.
    spec = dataclasses.replace(train_spec(problem), grad_tol=0.0, basin_grad=0.0)
    whole_spec = dataclasses.replace(spec, objective=WholeSlice(k, k))
    whole, _ = segment_time(k, batch, steps, whole_spec, problem, engine)
    ours, state = segment_time(k, batch, steps, spec, problem, engine)
    teacher = gaussian.orthonormal_teacher(k)
    # XLA's own count of the floating-point operations of one step of the batch.
    host = jax.device_get(state)
    cost = jax.jit(lambda s: step.train_step(s, teacher, spec)).lower(host).compile()
    cost = cost.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    gflops = cost["flops"] / batch / ours / 1e3

    w = torch.tensor(np.asarray(state.weights))
    v = torch.tensor(np.asarray(teacher))
    with torch.no_grad():
        peers.torch_gradient(w, v)
        start = time.perf_counter()
        for _ in range(steps):
            g = peers.torch_gradient(w, v)
            w -= cell.step_size * g * (torch.sqrt((g * g).sum(dim=(1, 2))) > 0)[:, None, None]
    theirs = (time.perf_counter() - start) / steps / batch * 1e6
    return ours, theirs, gflops, whole


def matmul_peak(size=2048, repeats=5):
    """GFLOP/s of a large float64 matrix product on this machine (XLA, every core): the
    float64 rate the machine actually reaches, against which the step is measured."""
    a = jax.random.normal(jax.random.key(0), (size, size))
    product = jax.jit(lambda a: a @ a)
    product(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="8,12,16")
    parser.add_argument("--runs", type=int, default=512)
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--numpy-sample", type=int, default=16, help="runs timed per cell")
    parser.add_argument("--rss-runs", type=int, default=100_000, help="0 skips the RSS run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    parser.add_argument("--docs", help="also write the table to DOCS/bench.md (make bench)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    config = config_module.load(
        str(CONFIG), {"sweep.k": args.k, "sweep.seeds": args.runs, "stop.max_steps": args.max_steps}
    )
    devices = jax.local_devices()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"JAX {jax.__version__} on {len(devices)} {devices[0].platform} device(s), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads",
        flush=True,
    )

    cold, stdout, _ = run_sweep_process(args.k, args.runs, args.max_steps, work / "s", work / "c")
    warm, _, _ = run_sweep_process(args.k, args.runs, args.max_steps, work / "s", work / "c")
    ours = runs_table.load(work / "s")
    fraction = useful_fraction(stdout)
    print(
        f"sweep: {cold:.1f} s cold, {warm:.1f} s warm, useful-step fraction {fraction:.3f}",
        flush=True,
    )

    tol, max_steps = config.stop.grad_tol, config.stop.max_steps
    total = {"torch": 0.0, "numpy": 0.0, "jax": 0.0}
    computed = {"torch": 0, "jax": 0}
    # The steps plain gradient descent takes to grad_tol: a run the basin finish ended
    # reports them in predicted_steps (applied steps plus the linear rate's remainder).
    ours["plain_steps"] = ours["predicted_steps"].fillna(ours["steps"]).astype(int)
    useful = int(ours["plain_steps"].sum())
    checks = []
    for cell in config_module.cells(config):
        initial = initial_points(config, cell, args.runs)
        teacher = np.asarray(gaussian.orthonormal_teacher(cell.k, cell.d))
        rows = ours[(ours.k == cell.k) & (ours.n == cell.n)].sort_values("run")
        expected = int((rows.status == "spurious").sum())
        lr = cell.step_size

        seconds, (w, steps) = timed(peers.torch_lockstep, initial, teacher, lr, tol, max_steps)
        total["torch"] += seconds
        computed["torch"] += int(steps.max()) * len(steps)
        checks.append(("torch", cell.k, spurious_count(config, cell, w, steps), expected))
        print(f"  k={cell.k} torch {seconds:.1f} s", flush=True)

        seconds, (w, steps) = timed(peers.jax_lockstep, initial, teacher, lr, tol, max_steps)
        total["jax"] += seconds
        computed["jax"] += int(steps.max()) * len(steps)
        checks.append(("jax", cell.k, spurious_count(config, cell, w, steps), expected))
        print(f"  k={cell.k} jax lockstep {seconds:.1f} s", flush=True)

        sample = args.numpy_sample
        seconds, (w, steps) = timed(
            peers.numpy_per_run, initial[:sample], teacher, lr, tol, max_steps
        )
        per_step = seconds / max(int(steps.sum()) + sample, 1)
        total["numpy"] += per_step * (int(rows.plain_steps.sum()) + len(rows))
        sample_rows = rows.iloc[:sample]
        checks.append(
            (
                "numpy (sample)",
                cell.k,
                spurious_count(config, cell, w, steps),
                int((sample_rows.status == "spurious").sum()),
            )
        )
        print(f"  k={cell.k} numpy sample of {sample}: {seconds:.1f} s", flush=True)

    mismatches = [c for c in checks if c[2] != c[3]]
    runs_total = len(ours)
    table = [
        "| implementation | wall time (s) | runs/s | time / sweep's (cold) "
        "| useful-step fraction |",
        "|---|---|---|---|---|",
        f"| sweep, cold compile cache | {cold:.1f} | {runs_total / cold:.1f} | 1.0 "
        f"| {fraction:.3f} |",
        f"| sweep, warm compile cache | {warm:.1f} | {runs_total / warm:.1f} | "
        f"{warm / cold:.2f} | {fraction:.3f} |",
        f"| PyTorch, batched lockstep | {total['torch']:.1f} | {runs_total / total['torch']:.1f} | "
        f"{total['torch'] / cold:.1f} | {useful / computed['torch']:.3f} |",
        f"| NumPy, per run (extrapolated from {args.numpy_sample} runs/cell) | "
        f"{total['numpy']:.1f} | {runs_total / total['numpy']:.2f} | "
        f"{total['numpy'] / cold:.1f} | 1.000 |",
        f"| JAX, vmap lockstep | {total['jax']:.1f} | {runs_total / total['jax']:.1f} | "
        f"{total['jax'] / cold:.1f} | {useful / computed['jax']:.3f} |",
    ]
    rates = {k: throughput(k, batch=512) for k in (8, 20, 50)}
    ours_20, torch_20, _, whole_20 = rates[20]
    peak = matmul_peak()
    lines = [
        f"# sweep benchmark, {datetime.date.today()}",
        "",
        f"Workload: k = n in {{{args.k}}}, {args.runs} runs each, GD step 5/k, stop at "
        f"|grad| <= {tol:g}, at most {max_steps} steps, float64.",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), JAX {jax.__version__} on "
        f"{len(devices)} {devices[0].platform} device(s), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads.",
        "",
        *table,
        "",
        "Spurious counts, peer vs sweep: "
        + ", ".join(f"{name} k={k}: {got}/{want}" for name, k, got, want in checks),
        "",
        f"Step throughput at k = n = 20, 512 runs: sweep {ours_20:.2f} us per run-step, "
        f"PyTorch {torch_20:.2f} us ({torch_20 / ours_20:.2f}x); the same segment without "
        f"CPU chunks (each device's whole slice at once) {whole_20:.2f} us "
        f"({whole_20 / ours_20:.2f}x).",
        "",
        f"Step rate (XLA's flop count), against a 2048 x 2048 float64 matrix product "
        f"({peak:.1f} GFLOP/s): "
        + ", ".join(
            f"k = {k}: {us:.2f} us per run-step, {rate:.1f} GFLOP/s ({rate / peak:.0%})"
            for k, (us, _, rate, _) in rates.items()
        )
        + ".",
    ]
    report = {
        "cold_s": cold,
        "warm_s": warm,
        "useful_fraction": fraction,
        "peers_s": total,
        "checks": checks,
        "k20_us_per_run_step": {"sweep": ours_20, "torch": torch_20, "whole_slice": whole_20},
        "step_gflops": {k: rate for k, (_, _, rate, _) in rates.items()},
        "matmul_gflops": peak,
    }
    if args.rss_runs:
        seconds, _, rss = run_sweep_process(
            "6", args.rss_runs, args.max_steps, work / "rss", work / "c"
        )
        lines.append(
            f"Peak RSS of `sweep run --k 6 --seeds {args.rss_runs}`: {rss:.0f} MB "
            f"({seconds:.0f} s)."
        )
        report["rss_mb"] = rss
    text = "\n".join(lines)
    print(text)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"bench-{stamp}.md").write_text(text + "\n")
    (out / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1))
    if args.docs:  # the docs' benchmarks page includes this file
        head = f"Measured {datetime.date.today()} by `make bench`.\n\n"
        page = stamp("make bench") + "\n" + head + "\n".join(lines[2:]) + "\n"
        (Path(args.docs) / "bench.md").write_text(page)
    if mismatches:
        raise SystemExit(f"peers disagree with sweep on spurious counts: {mismatches}")


if __name__ == "__main__":
    main()
