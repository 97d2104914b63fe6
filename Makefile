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

.PHONY: help setup browser train test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-8s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install the project with its dev extras

# Debian's chromium and chromedriver, for the chat-page tests (tests/serve/test_page.py skips without them).
# Skipped when both are there; apt-get as root, else through `sudo -n`; never fails the set-up.
browser: ## install Chromium and its driver with apt-get, if missing (the chat-page tests use them)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no apt-get here: install Chromium and its chromedriver yourself to run the chat-page tests (they are skipped without them)"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  echo "installing chromium and chromium-driver with apt-get (for the chat-page tests)"; \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "note: could not install them: run 'sudo apt-get install chromium chromium-driver' for the chat-page tests (they are skipped without them)"; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	@touch $@

train: setup ## run the main job: the CPU quickstart on the embedded corpus
	$(PY) train.py experiment=quickstart

test: setup browser ## run the whole test suite (Chromium for the chat-page tests is installed first)
	$(PY) -m pytest

clean: ## remove run outputs and caches (keeps .venv)
	rm -rf outputs .pytest_cache
