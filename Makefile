# The two set-up commands of the README. Each creates .venv (Python >= 3.11) if needed.
#   make demo   install kmedqa and run the offline demo: raw data -> paper/
#   make test   install what the tests need and run them
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# CPU build of torch (a bare `torch` would pull a multi-GB CUDA build). On a GPU machine,
# install the CUDA build of torch first and run `make TORCH= demo`.
TORCH ?= torch==2.13.0

.PHONY: demo test test-cluster lint install clean-results

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH) -e '.[demo,test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/snakemake --cores 1 --resources gpu=1

test: $(VENV)/.installed
	$(BIN)/pytest

# A one-node SLURM cluster on this machine (installs slurm-wlm + munge; root) and the tiny DAG
# through profiles/slurm, with a cancelled job and a rerun (tests/test_slurm_cluster.py).
test-cluster: $(VENV)/.installed
	$(BIN)/pytest -m cluster tests/test_slurm_cluster.py

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results .snakemake paper/figures paper/tables paper/numbers.tex
