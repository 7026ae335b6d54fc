# The two commands of the README: `make run` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,mysql,agent,dashboard,redshift,snowflake,bigquery,sqlserver,databricks

.PHONY: run test test-fast lint typecheck venv clean

$(BIN)/buster-jobs: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(BIN)/buster-jobs

venv: $(BIN)/buster-jobs

run: venv
	$(BIN)/buster-jobs datasources introspect sample --wait

test: venv
	$(BIN)/pytest tests

test-fast: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check runtime

typecheck: venv
	$(BIN)/mypy

clean:
	rm -rf .buster .pytest_cache .mypy_cache .ruff_cache
