"""Small sweeps whose rows are stored in this folder, so a change that alters any result
shows up as a failing test (`tests/test_reference.py`).

Regenerate only on purpose, when results are meant to change:
    .venv/bin/python tests/reference/cases.py [name ...]
"""

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> arguments of `python -m sweep run` (run from the repository root).
CASES = {
    # Closed form: plain gradient descent, the loss stop, and the Newton polish (n = k + 1);
    # then the same runs with the basin finish (`sweep/basin.py`).
    "closed_form": [
        "configs/safran_shamir_2018.toml", "--k", "7..8", "--n", "k..k+1", "--seeds", "16",
        "--set", "stop.polish_after=3000", "--set", "stop.basin_grad=0",
    ],
    "closed_form_basin": [
        "configs/safran_shamir_2018.toml", "--k", "7..8", "--n", "k..k+1", "--seeds", "16",
        "--set", "stop.polish_after=3000",
    ],
    "closed_form_loss_stop": [
        "--k", "6", "--n", "k+1", "--seeds", "8", "--set", "stop.polish_after=0",
    ],
    "leaky_relu": ["configs/leaky_relu.toml", "--k", "4", "--seeds", "8"],
    # Networks on data: 1-D points with biases (NTK step), SGD, and a deeper student whose
    # runs stop on plateaus.
    "holzmuller_1d": [
        "configs/holzmuller_1d.toml", "--n", "16", "--seeds", "8", "--max-steps", "30000",
    ],
    "holzmuller_1d_sgd": [
        "configs/holzmuller_1d_sgd.toml", "--n", "16", "--seeds", "4", "--max-steps", "2000",
    ],
    "deep_students": [
        "configs/deep_students.toml", "--k", "3", "--n", "k", "--seeds", "6",
        "--max-steps", "4000", "--set", "stop.polish_after=1000",
        "--set", "problem.samples=100", "--set", "problem.test_samples=200",
    ],
}  # fmt: skip

# The columns compared; `sweep` (the folder's name) is left out.
COLUMNS = [
    "problem", "k", "n", "d", "run", "seed", "init", "init_scale", "optimizer", "step_size",
    "steps", "newton_steps", "stop_reason", "status", "loss", "grad_norm", "min_eig",
    "decided_by", "symmetry", "weights", "test_loss", "depth", "minibatch", "linear_loss",
    "kink_entered", "essentially_linear", "bias_movement", "kinks", "stationarity_margin",
    "sgd_loss", "fallback_reason", "predicted_steps",
]  # fmt: skip


def run_case(name, out):
    """Run one case into `out` and return its rows in a fixed order."""
    from sweep import load
    from sweep.commands.cli import main

    code = main(["run", *CASES[name], "--out", str(out), "--no-progress"])
    assert code == 0, f"{name}: exit status {code}"
    return load(out)[COLUMNS].sort_values(["k", "n", "run"]).reset_index(drop=True)


def main(names=()):
    for name in names or CASES:
        folder = Path(tempfile.mkdtemp())
        try:
            run_case(name, folder / name).to_parquet(HERE / f"{name}.parquet", index=False)
        finally:
            shutil.rmtree(folder)
        print(f"wrote {HERE / name}.parquet", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
