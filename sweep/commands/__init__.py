"""Entry points: the command line (`cli.py`) and what each of its commands runs: a sweep
(`runner.py`, on SLURM through `cluster.py`), one run again (`replay.py`), proofs of a
sweep's points (`certify.py`) and critical points in fixed-point spaces (`critical.py`)."""
