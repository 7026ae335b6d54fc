# The two commands of the README: `make run` and `make test`. Both create .venv first.
# `make run` installs only the package (the embedded default needs nothing else);
# `make test` adds every extra and the test tools.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: run test test-fast lint typecheck venv clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(VENV)/.core $@

venv: $(VENV)/.dev

run: $(VENV)/.core
	$(BIN)/buster-jobs datasources introspect sample --wait

test: $(VENV)/.dev
	$(BIN)/pytest tests

test-fast: $(VENV)/.dev
	$(BIN)/pytest tests/unit

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: $(VENV)/.dev
	$(BIN)/mypy

clean:
	rm -rf .buster .pytest_cache .mypy_cache .ruff_cache
