# MiniMind: Lightning + Hydra. `make help` lists the targets.
#   make train    set up .venv (if needed) and run the CPU quickstart
#   make test     set up .venv (if needed) and run the whole test suite
# TORCH picks the torch build installed into a fresh .venv; an existing .venv keeps its torch.
#   CPU (default here):  make setup
#   CUDA build (Linux):  make setup TORCH=torch
VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.minimind-installed

.PHONY: help setup train test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-8s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install the project with its dev extras

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	@touch $@

train: setup ## run the main job: the CPU quickstart on the embedded corpus
	$(PY) train.py experiment=quickstart

test: setup ## run the whole test suite
	$(PY) -m pytest

clean: ## remove run outputs and caches (keeps .venv)
	rm -rf outputs .pytest_cache
