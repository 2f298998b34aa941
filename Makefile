# relto — two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RELTO_DATA_DIR ?= ./.relto-data
export RELTO_DATA_DIR

.PHONY: run federation test lint typecheck unit bench lock clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

IWM := invisible-watermark==0.2.0

# Runtime only: what `make run` needs.
$(VENV)/.installed-run: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

# Runtime plus the test extras.
$(VENV)/.installed-test: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# the leak-tracing baseline; --no-deps because it asks for torch and opencv-python,
	# and we use only its dwtDct method (docs/adr/0157)
	$(BIN)/python -m pip install --quiet --no-deps $(IWM)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	mkdir -p "$(RELTO_DATA_DIR)"
	exec $(BIN)/relto serve --demo

# Four federated nodes (AUS, GBR, USA, JPN) on loopback, each with its own OpenID
# provider (Node.js oidc-provider, installed by npm ci); Ctrl-C stops them all.
federation: $(VENV)/.installed-run
	bash scripts/system-deps.sh node
	exec $(BIN)/relto federation demo

system-deps:
	bash scripts/system-deps.sh

LINT_PATHS := $(wildcard src tests bench examples)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test system-deps
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint typecheck unit

bench: $(VENV)/.installed-test
	bash scripts/system-deps.sh bench
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -e '.[test]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^relto' > constraints.txt
	# $(IWM) is pinned in the Makefile: it is installed --no-deps
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
