# The front door: `make sweep`, `make test`, `make bench`, `make lint`.
# make sweep K=6..20 N=k+1 SEEDS=1000 CONFIG=configs/safran_shamir_2018.toml OUT=results/mine
# make sweep K=6..8 GRID="optimizer.step_size=1/k,5/k init.kind=xavier,he"
# make sweep K=6..25 HALFWIDTH=0.02
# make sweep K=6..20 LAUNCHER=slurm TASKS=64 PARTITION=gpu ARGS="--gpus-per-task 1 --wait"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev

CONFIG ?=
K ?=
N ?=
SEEDS ?=
GRID ?=
HALFWIDTH ?=
OUT ?=
LAUNCHER ?=
TASKS ?=
PARTITION ?=
ARGS ?=

SWEEP_ARGS := $(CONFIG) $(if $(K),--k $(K)) $(if $(N),--n $(N)) $(if $(SEEDS),--seeds $(SEEDS)) \
	$(foreach axis,$(GRID),--grid $(axis)) $(if $(HALFWIDTH),--halfwidth $(HALFWIDTH)) \
	$(if $(OUT),--out $(OUT)) $(if $(LAUNCHER),--launcher $(LAUNCHER)) \
	$(if $(TASKS),--tasks $(TASKS)) $(if $(PARTITION),--partition $(PARTITION)) $(ARGS)

.PHONY: notebooks install sweep test test-quick docs docs-serve bench gpu-check lint format clean report defaults certify findings

# The venv is (re)built when missing or when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

sweep: $(VENV)/.installed
	$(PY) -m sweep run $(SWEEP_ARGS)

# On every core (pytest-xdist); the tests that submit to SLURM share one worker.
test: $(VENV)/.installed
	$(PY) -m pytest -q -n auto --dist loadgroup

# The fast subset: everything not marked slow (under a minute on 2 cores).
test-quick: $(VENV)/.installed
	$(PY) -m pytest -q -n auto --dist loadgroup -m "not slow"

# The docs site (docs/, mkdocs.yml) with its generated tables, into build/site/.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench.py --docs docs/generated $(ARGS)

# The example notebooks, run again and stored with their outputs (the docs show them).
notebooks: $(VENV)/.installed
	cd examples && ../$(PY) -c "import sys, nbformat, nbclient; [nbformat.write(nbclient.execute( \
		nbformat.read(name, as_version=4), timeout=900), name) for name in sys.argv[1:]]" \
		quickstart.ipynb tour.ipynb

# Every generated page of the docs (docs/generated/), made again from the current code,
# each stamped with its commit. Long: the paper's tables, the step-size and adaptive
# studies, the symmetry figures and the large-k proofs (well over an hour on 2 cores).
FINDINGS ?= results/findings
findings: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/paper_tables.py --out $(FINDINGS) --docs docs/generated
	$(PY) -m sweep run configs/safran_2021.toml --k 50 --seeds 100 --no-progress --out $(FINDINGS)/k50
	$(PY) -m sweep run configs/safran_2021.toml --k 100 --seeds 100 --no-progress --out $(FINDINGS)/k100
	$(PY) benchmarks/proofs_large_k.py $(FINDINGS)/k50 $(FINDINGS)/k100
	$(PY) -m sweep critical --k 6..20 --out $(FINDINGS)/critical
	$(PY) -m sweep critical --k 6..100 --types "" --sizes 1+k-1 --out $(FINDINGS)/family
	$(PY) benchmarks/symmetry.py --table1 $(FINDINGS)/table1 --k50 $(FINDINGS)/k50 \
		--critical $(FINDINGS)/critical --family $(FINDINGS)/family
	$(PY) benchmarks/step_sizes.py --k 6..14 --seeds 1000 --out $(FINDINGS)/step_sizes --docs docs/generated
	$(PY) -m sweep run --k 8 --seeds 300 --grid optimizer.step_size=0.05/k --no-progress --out $(FINDINGS)/gd_0.05
	$(PY) -m sweep run --k 8 --seeds 300 --set optimizer.kind=flow --no-progress --out $(FINDINGS)/flow_k8
	$(PY) benchmarks/step_sizes.py --compare 0.05 --gd $(FINDINGS)/gd_0.05 --flow $(FINDINGS)/flow_k8 --docs docs/generated
	$(PY) benchmarks/adaptive.py --out $(FINDINGS)/adaptive --docs docs/generated
	$(PY) benchmarks/bench.py --docs docs/generated

# Everything measured on the accelerator JAX sees (a dry run with JAX_PLATFORMS=cpu);
# writes docs/generated/gpu-check.md. Cut to fit 10 minutes on one GPU.
gpu-check: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/gpu_check.py --docs docs/generated $(ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check sweep tests benchmarks docs/hooks.py
	$(PY) -m ruff format --check sweep tests benchmarks docs/hooks.py

format: $(VENV)/.installed
	$(PY) -m ruff format sweep tests benchmarks
	$(PY) -m ruff check --fix sweep tests benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache build

# make certify [OUT=results/default]: prove every distinct minimum and saddle
certify: $(VENV)/.installed
	$(PY) -m sweep certify $(or $(OUT),results/default)

# make report [OUT=results/default]
report: $(VENV)/.installed
	$(PY) -m sweep report $(or $(OUT),results/default)

# configs/default.toml is generated from the schema (sweep/config/schema.py).
defaults: $(VENV)/.installed
	$(PY) -c "from sweep.config import default_toml; print(default_toml(), end='')" > configs/default.toml
