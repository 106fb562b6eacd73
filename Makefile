# Townlet developer entry points. Quick start on a fresh machine: `make run` or `make test`
# (both create the virtual environment first when it is missing or older than pyproject.toml).
#
#   make setup       .venv with torch==2.13.0 (CPU) and the [train,ops,dev] extras
#   make run         the main job (RUN_CMD below), W&B offline
#   make test        ruff + mypy + pytest in .venv (the training set: gymnasium 0.29, PettingZoo 1.24)
#   make test-light  the environment (+ [ops]), on current gymnasium/PettingZoo, in .venv-light (no torch)
#   make lint        ruff + mypy only
#   make bench       benchmarks/throughput.py
#   make docs        regenerate the generated tables in docs/environment.md
#   make clean       caches and build outputs (keeps the virtual environments and runs/)
#   make distclean   clean + both virtual environments

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
LIGHT_VENV ?= .venv-light
PY := $(VENV)/bin/python
LIGHT_PY := $(LIGHT_VENV)/bin/python
STAMP := $(VENV)/.installed
LIGHT_STAMP := $(LIGHT_VENV)/.installed

# torch must be asked for as exactly this version: the CPU wheel of it lies on the machine's
# disk; any other spec downloads a multi-GB CUDA build (see shared DEPENDENCIES.md).
TORCH_SPEC ?= torch==2.13.0

# The main job: the poc experiment end to end (capture -> bc -> anneal -> evaluate -> promote -> release).
RUN_CMD ?= townlet run experiments/poc.yaml

# pytest workers (pytest-xdist); 0 runs in-process. Two cores on every machine here.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
PYTEST_XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS))
# mypy checks the packages that have Python files (training/ may still be empty).
MYPY_TARGETS := townlet_env $(if $(shell find training -name '*.py' 2>/dev/null | head -n 1),training)

export WANDB_SILENT ?= true

header = @printf '\n\033[1m==== %s\033[0m\n' "$(1)"

.PHONY: help setup setup-light run test test-light lint ruff mypy pytest bench docs docs-check clean distclean

help:
	@sed -n 's/^#   \(make .*\)/\1/p' $(firstword $(MAKEFILE_LIST))

# --- environments ----------------------------------------------------------------------

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(call header,setup: $(VENV) ($(TORCH_SPEC) + .[train,ops,dev]))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e '.[train,ops,dev]'
	$(PY) -m pip check
	@touch $@

setup-light: $(LIGHT_STAMP)

# The environment's own requirements only (no extras, no torch), then the newest gymnasium
# and PettingZoo that those requirements admit.
$(LIGHT_STAMP): pyproject.toml
	$(call header,setup-light: $(LIGHT_VENV) (townlet_env alone, current gymnasium/PettingZoo))
	test -x $(LIGHT_PY) || $(PYTHON) -m venv $(LIGHT_VENV)
	$(LIGHT_PY) -m pip install -e '.[ops]' pytest hypothesis
	$(LIGHT_PY) -m pip install -U gymnasium pettingzoo
	$(LIGHT_PY) -m pip check
	@touch $@

# --- the main job ----------------------------------------------------------------------

run: $(STAMP)
	$(call header,run: $(RUN_CMD))
	WANDB_MODE=offline PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(RUN_CMD)

# --- checks ----------------------------------------------------------------------------

test: lint docs-check pytest

lint: ruff mypy

ruff: $(STAMP)
	$(call header,ruff check)
	$(VENV)/bin/ruff check .

mypy: $(STAMP)
	$(call header,mypy $(MYPY_TARGETS))
	$(VENV)/bin/mypy $(MYPY_TARGETS)

pytest: $(STAMP)
	$(call header,pytest (.venv: training set))
	@$(PY) -c 'import gymnasium, pettingzoo, torch; print(f"gymnasium {gymnasium.__version__}, pettingzoo {pettingzoo.__version__}, torch {torch.__version__}")'
	WANDB_MODE=disabled $(PY) -m pytest $(PYTEST_XDIST) --durations=10 $(PYTEST_ARGS)

# The environment alone on current gymnasium/PettingZoo. Tests that need the [train] extra are
# marked `train` or skip themselves with pytest.importorskip.
test-light: $(LIGHT_STAMP)
	$(call header,test-light (.venv-light: townlet_env alone))
	@$(LIGHT_PY) -c 'import gymnasium, pettingzoo; print(f"gymnasium {gymnasium.__version__}, pettingzoo {pettingzoo.__version__}")'
	@$(LIGHT_PY) -c 'import gymnasium, sys; sys.exit(0 if int(gymnasium.__version__.split(".")[0]) >= 1 else "test-light expects gymnasium 1.x, got " + gymnasium.__version__)'
	@$(LIGHT_PY) -c 'import importlib.util, sys; sys.exit("torch must not be installed in $(LIGHT_VENV)" if importlib.util.find_spec("torch") else 0)'
	@$(LIGHT_PY) -c 'import sys, townlet_env; heavy = {"torch", "stable_baselines3", "imitation", "wandb"} & set(sys.modules); sys.exit(f"import townlet_env pulled in {sorted(heavy)}" if heavy else 0)'
	WANDB_MODE=disabled $(LIGHT_PY) -m pytest -m "not train" $(PYTEST_ARGS)

bench: $(STAMP)
	$(call header,bench)
	$(PY) benchmarks/throughput.py

# --- docs ------------------------------------------------------------------------------

docs: $(STAMP)
	$(PY) scripts/gen_env_doc_tables.py --write docs/environment.md

docs-check: $(STAMP)
	$(PY) scripts/gen_env_doc_tables.py --check docs/environment.md

# --- cleaning --------------------------------------------------------------------------

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -path ./$(LIGHT_VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(LIGHT_VENV)
