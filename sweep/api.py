"""The Python entry point: run a sweep from a notebook or a script.

    import sweep
    runs = sweep.run("configs/default.toml", k="6..7", seeds=50)
    runs.attrs["path"]          # where the rows were written
    history, final = sweep.replay(runs.attrs["path"], k=6, n=6, run=0)
    catalogue = sweep.certify(runs.attrs["path"])

The same resume semantics as `sweep run`: shards already in the folder are
kept, a different config is refused unless fresh=True.
"""

import sys
from pathlib import Path

import pandas as pd

from . import config as config_module
from . import runtime
from .commands.certify import certify_sweep
from .commands.replay import replay_stored
from .commands.runner import RunOptions, run_sweep
from .config import Config, ConfigError
from .config.overrides import keyword_overrides
from .objectives import kernels
from .results import runs_table


def run(
    config: str | Path | Config | None = None,
    *,
    out: str | Path | None = None,
    fresh: bool = False,
    progress: bool | None = None,
    **overrides,
) -> pd.DataFrame:
    """Train, classify and store a sweep; returns its runs, one row per run.

    Args:
      config: a TOML file, a `Config`, or None for the defaults.
      out: the results folder (default: results/<name>, with the overrides in the name).
      fresh: replace what `out` holds instead of resuming.
      progress: a progress bar (None: where the output is a terminal or a notebook).
      **overrides: sweep fields (k="6..20", n="k+1", seeds=1000, seed=3), an activation
        (activation="tanh", or a JAX function of your own: activation=my_fn), sections as
        dicts (stop={"max_steps": 50000}) and extra axes as a dict of lists
        (grid={"optimizer.step_size": ["1/k", "5/k"]}).

    Returns:
      The runs as a DataFrame; `frame.attrs["path"]` is the folder they were written to.

    The sweep trains in float64 and keeps compiled programs on disk for its duration
    (`runtime.sweep_settings`); the caller's JAX settings are restored afterwards.
    """
    changes = keyword_overrides(_activation_by_path(overrides))
    if isinstance(config, Config):
        config = config_module.from_dict(config.to_raw(), changes)
    else:
        config = config_module.load(config, changes)
    shown = {key: overrides[key] for key in ("k", "n", "seeds") if key in overrides}
    shown["grid"] = [f"{a}={','.join(map(str, v))}" for a, v in overrides.get("grid", {}).items()]
    named = ("sweep.k", "sweep.n", "sweep.seeds")
    settings = {key: value for key, value in changes.items()
                if key not in named and not key.startswith("grid.")}  # fmt: skip
    folder = (
        Path(out) if out is not None
        else runs_table.default_folder(config.name, **shown, settings=settings)
    )  # fmt: skip
    with runtime.sweep_settings():
        run_sweep(config, folder, RunOptions(fresh=fresh, progress=progress))
    frame = runs_table.load(folder)
    frame.attrs["path"] = str(folder)
    print(f"sweep: {len(frame)} runs in {folder}", file=sys.stderr)
    return frame


def _activation_by_path(overrides: dict) -> dict:
    """activation=fn (or problem={"activation": fn}) -> problem.activation = "module.fn"."""
    overrides = dict(overrides)
    problem = dict(overrides.pop("problem", {}))
    if "activation" in overrides:
        problem["activation"] = overrides.pop("activation")
    if callable(problem.get("activation")):
        try:
            problem["activation"] = kernels.path_of(problem["activation"])
        except ValueError as error:
            raise ConfigError(
                "problem.activation", None, None, detail=f"problem.activation: {error}"
            ) from None
    if problem:
        overrides["problem"] = problem
    return overrides


def replay(path: str | Path, k: int, n: int, run: int, **axes: object) -> tuple[pd.DataFrame, dict]:
    """Train one stored run of a sweep folder again, recording every step. A sweep with
    `[grid]` axes needs the cell's value of each: ``replay(path, 6, 6, 0,
    **{"optimizer.step_size": "1/k"})``.

    Returns:
      (history, final): step, loss and grad_norm at every evaluated point, and the final
      weights, steps, loss, grad_norm, stop reason, status and smallest eigenvalue. The
      final point equals the stored row's (`sweep.load(path, k=k, n=n, run=run)`).
    """
    with runtime.sweep_settings():
        history, final, _, _ = replay_stored(path, k, n, run, axes)
    return history, final


def certify(path: str | Path, workers: int | None = None) -> pd.DataFrame:
    """Prove every distinct point of a closed-form sweep's catalogue in ball arithmetic.

    Returns the catalogue with its certificates (`certified`, `reason`, `radius`,
    `loss_low`, `loss_high`, `min_eig_low`, `negative`); `sweep.load(path)` then has a
    per-run `certified` column. See the docs' Proofs page.
    """
    return certify_sweep(path, workers=workers, log=lambda line: print(line, file=sys.stderr))
