# One command each: demo, test, bench, lint. Each creates .venv with pinned versions first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.base-installed
DEV_STAMP := $(VENV)/.dev-installed
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
# KServe's own environment, for the test that runs a real KServe server (its pins conflict with ours)
KSERVE_VENV := .venv-kserve
KSERVE_STAMP := $(KSERVE_VENV)/.installed

.PHONY: demo test bench scenarios lint typecheck format clean fuzz kserve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip setuptools wheel

# `pip install mlwatch` alone is the SDK (standard library only); the server side, which the
# demo and the `mlwatch` command need, is the `server` extra; `dev` includes every extra.
$(BASE_STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[server]'
	touch $@

$(DEV_STAMP): $(BASE_STAMP)
	$(PIP) -e '.[dev]'
	touch $@

$(KSERVE_STAMP): constraints-kserve.txt
	rm -rf $(KSERVE_VENV)
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install --disable-pip-version-check -q -c constraints-kserve.txt kserve scikit-learn
	touch $@

kserve: $(KSERVE_STAMP)

demo: $(BASE_STAMP)
	$(BIN)/mlwatch demo $(DEMO_ARGS)

test: $(DEV_STAMP) $(KSERVE_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A long randomized schemathesis run of every operation and role on SQLite and PostgreSQL
# (MLWATCH_FUZZ_SECONDS in all, default 600); not part of `make test`, which runs the short
# derandomized one (tests/server/test_fuzz.py).
fuzz: $(DEV_STAMP)
	$(BIN)/python -m tests.server.fuzz

bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The retrain loop through real processes on drift stories with known answers, one row each
# (benchmarks/scenarios/README.md): `make scenarios SCENARIO=concept_sudden SEED=3` runs one.
SEED ?= 0
scenarios: $(BASE_STAMP)
	$(BIN)/python -m benchmarks.scenarios $(SCENARIO) --seed $(SEED) $(SCENARIO_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check monitor retrain dashboard tests benchmarks
	$(BIN)/ruff format --check monitor retrain dashboard tests benchmarks
	$(BIN)/mypy monitor retrain dashboard

format: $(DEV_STAMP)
	$(BIN)/ruff format monitor retrain dashboard tests benchmarks
	$(BIN)/ruff check --fix monitor retrain dashboard tests benchmarks

clean:
	rm -rf $(VENV) $(KSERVE_VENV) .mlwatch .pytest_cache .mypy_cache .ruff_cache
