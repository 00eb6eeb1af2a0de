"""`make gpu-check`: everything measured on whatever accelerator JAX sees, in one table.

Workloads (each a fresh process, first with an empty compilation cache, then warm):

- `make bench`'s workload against the same peers (`benchmarks/bench.py`, cut to 256 runs
  per cell, 4 NumPy runs timed per cell and no RSS run; it needs the bench extra);
- Table 1 (`configs/safran_shamir_2018.toml`) in float64, and with
  `optimizer.precision = "mixed"`;
- `configs/safran_2021.toml --k 50 --seeds 500` and `--k 100`, cut to `--seeds 100`.

For each: the wall time cold and warm, the runs in flight per device, the share of the
wall time in the host loop's phases (training segments, finishes, classification) and in
XLA compilation (which happens inside those phases, so the shares overlap), the peak
device memory (peak RSS where the device reports none, as a CPU does), and the statuses
against a CPU run of the same sweep's first `--compare-seeds` runs per cell (a run's
result does not depend on how many runs its cell has). Workloads that would not start
before `--budget` seconds have passed are listed as skipped.

`--tiny` runs the same code on a tiny workload (the test suite does, on a CPU);
`JAX_PLATFORMS=cpu` makes the whole check a dry run on the CPU.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE1 = str(ROOT / "configs" / "safran_shamir_2018.toml")
SAFRAN_2021 = str(ROOT / "configs" / "safran_2021.toml")

COLUMNS = [
    "workload", "device", "runs", "cold (s)", "warm (s)", "runs in flight per device",
    "training", "finishes", "classification", "compilation", "peak device memory",
    "statuses vs CPU",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    config: str
    overrides: dict  # "section.field" -> value


def workloads(tiny: bool) -> list[Workload]:
    if tiny:
        small = {"sweep.k": "4..5", "sweep.seeds": 8}
        return [
            Workload("Table 1, float64 (tiny: k = 4..5, 8 runs)", TABLE1, small),
            Workload("Table 1, mixed (tiny)", TABLE1, {**small, "optimizer.precision": "mixed"}),
        ]
    return [
        Workload("Table 1, float64", TABLE1, {}),
        Workload("Table 1, mixed precision", TABLE1, {"optimizer.precision": "mixed"}),
        Workload("k = n = 50, 500 runs", SAFRAN_2021, {"sweep.k": "50", "sweep.seeds": 500}),
        Workload("k = n = 100, 100 runs", SAFRAN_2021, {"sweep.k": "100", "sweep.seeds": 100}),
    ]


def measure(workload: Workload, out: str) -> dict:
    """One sweep in this process (a worker): what the table needs, as a dict."""
    import jax

    from sweep import config as config_module
    from sweep import runtime
    from sweep.commands.runner import RunOptions, run_sweep
    from sweep.engine.scheduler import Engine
    from sweep.results import runs_table

    runtime.prepare_process()
    compiled = []

    def listen(event: str, seconds: float, **_) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    config = config_module.load(workload.config, workload.overrides)
    engine = Engine(config)
    start = time.perf_counter()
    options = RunOptions(fresh=True, progress=False, release_programs=True, log=lambda _: None)
    run_sweep(config, out, options, engine=engine)
    wall = time.perf_counter() - start
    device = engine.devices[0]
    try:
        stats = device.memory_stats() or {}
    except (AttributeError, NotImplementedError, RuntimeError):  # no figure on this device
        stats = {}
    peak = stats.get("peak_bytes_in_use")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    frame = runs_table.load(out, columns=["status"])
    return {
        "wall": wall,
        "platform": device.platform,
        "device": getattr(device, "device_kind", device.platform),
        "devices": len(engine.devices),
        "runs": len(frame),
        "in_flight": max(batch for _, batch in engine.counters.batch_sizes) // len(engine.devices),
        "seconds": engine.counters.seconds,
        "compile": sum(compiled),
        "peak_device_bytes": peak,
        "peak_rss_bytes": rss,
    }


def _worker(workload: Workload, out: Path, cache: Path, cpu: bool = False) -> dict:
    """`measure` in a fresh process; with `cpu`, on the CPU whatever else there is."""
    env = {**os.environ, "SWEEP_JAX_CACHE": str(cache)}
    if cpu:
        env["JAX_PLATFORMS"] = "cpu"
    spec = json.dumps(dataclasses.asdict(workload))
    done = subprocess.run(
        [sys.executable, __file__, "--worker", spec, "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{workload.name}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_statuses(accelerated: Path, on_cpu: Path) -> str:
    """Statuses of the CPU run's runs against the same runs of the accelerated sweep."""
    import sweep

    cpu = sweep.load(on_cpu, columns=["status"])
    ours = sweep.load(accelerated, columns=["status"])
    both = cpu.merge(ours, on=["k", "n", "run"], suffixes=("_cpu", ""))
    differ = both[both["status"] != both["status_cpu"]]
    if differ.empty:
        return f"same ({len(both)} runs)"
    listed = ", ".join(f"k={r.k} n={r.n} run {r.run}" for r in differ.head(5).itertuples())
    return f"{len(differ)} of {len(both)} differ ({listed})"


def _share(seconds: float, wall: float) -> str:
    return f"{100 * seconds / wall:.0f}%"


def _memory(found: dict) -> str:
    if found["peak_device_bytes"] is not None:
        return f"{found['peak_device_bytes'] / 2**30:.2f} GiB"
    return f"{found['peak_rss_bytes'] / 2**30:.2f} GiB (RSS, no device figure)"


def check(workload: Workload, work: Path, compare_seeds: int) -> list[str]:
    """The table row of one workload: cold, warm, and the CPU comparison."""
    cache = work / "cache"
    cold = _worker(workload, work / "cold", cache)
    warm = _worker(workload, work / "warm", cache)
    seeds = min(compare_seeds, int(workload.overrides.get("sweep.seeds", compare_seeds)))
    subset = dataclasses.replace(workload, overrides={**workload.overrides, "sweep.seeds": seeds})
    # On a CPU the comparison compiles what the sweep compiled: one cache serves both.
    cpu_cache = cache if cold["platform"] == "cpu" else work / "cpu-cache"
    _worker(subset, work / "cpu", cpu_cache, cpu=True)
    phases = cold["seconds"]
    return [
        workload.name,
        f"{cold['devices']} x {cold['device']}",
        str(cold["runs"]),
        f"{cold['wall']:.1f}",
        f"{warm['wall']:.1f}",
        str(cold["in_flight"]),
        _share(phases.get("training", 0.0), cold["wall"]),
        _share(phases.get("finishes", 0.0), cold["wall"]),
        _share(phases.get("classify", 0.0), cold["wall"]),
        _share(cold["compile"], cold["wall"]),
        _memory(cold),
        compare_statuses(work / "cold", work / "cpu"),
    ]


def bench_row(tiny: bool, work: Path) -> list[str]:
    """`make bench`'s workload and peers, cut to fit; a row saying why where it cannot run."""
    blank = ["-"] * (len(COLUMNS) - 2)
    if tiny:
        return ["make bench workload", *blank, "skipped: not part of --tiny"]
    try:
        import torch  # noqa: F401
    except ImportError:
        return ["make bench workload", *blank, "skipped: no PyTorch (make gpu-check installs it)"]
    command = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--runs", "256",
               "--numpy-sample", "4", "--rss-runs", "0", "--out", str(work)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    found = sorted(work.glob("bench-*.json"))
    if done.returncode != 0 or not found:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return ["make bench workload", *blank, f"failed: {reason}"]
    bench = json.loads(found[-1].read_text())
    peers = ", ".join(f"{name} {seconds / bench['cold_s']:.1f}x" for name, seconds
                      in bench["peers_s"].items())  # fmt: skip
    row = ["make bench workload (peers: " + peers + ")", "-", "-",
           f"{bench['cold_s']:.1f}", f"{bench['warm_s']:.1f}", *["-"] * 6]  # fmt: skip
    return [*row, "the peers' spurious counts equal sweep's"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny workload (a dry run)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the check")
    parser.add_argument("--compare-seeds", type=int, default=20, help="runs per cell on CPU")
    parser.add_argument("--out", default=None, help="where the sweeps and the table go")
    parser.add_argument("--docs", help="also write the table to DOCS/gpu-check.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(Workload(**json.loads(args.worker)), args.out)))
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = [bench_row(args.tiny, out / "bench")]
    for index, workload in enumerate(workloads(args.tiny)):
        if time.perf_counter() - start > args.budget:
            rows.append([workload.name, *["-"] * (len(COLUMNS) - 2), "skipped: over --budget"])
            continue
        try:
            rows.append(check(workload, out / f"w{index}", args.compare_seeds))
        except RuntimeError as error:
            rows.append([workload.name, *["-"] * (len(COLUMNS) - 2), f"failed: {error}"])
    lines = [
        f"Measured {datetime.date.today()} by `make gpu-check` ({time.perf_counter() - start:.0f}"
        f" s in all) on {platform.machine()} with {os.cpu_count()} CPU cores.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "gpu-check.md").write_text(text)
    if args.docs:
        (Path(args.docs) / "gpu-check.md").write_text(text)


if __name__ == "__main__":
    main()
