# switchman — shared verbs. `make serve` and `make test` work on a fresh machine with only Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: serve test lint format pytest venv dev bench bench-quick bench-ingest bench-default bench-latency bench-backtest bench-events bench-console bench-memory bench-scaleout bench-sdk bench-metrics bench-rate-limit bench-notifications stress stress-quick migration clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# Runtime install (re-done when pyproject.toml changes).
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -e .
	touch $@

# Development install: runtime + dev extras.
$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -e '.[dev]'
	touch $@

# Benchmark install: dev + the profilers (py-spy, pyinstrument).
$(VENV)/.installed-bench: $(VENV)/.installed-dev pyproject.toml
	$(PIP) install -e '.[dev,bench]'
	touch $@

venv: $(VENV)/.installed
dev: $(VENV)/.installed-dev

## Run the service on the embedded default (SQLite file ./switchman.db, in-process worker).
serve: venv
	$(BIN)/switchman serve

## Lint, type-check and run the whole test suite (SQLite and PostgreSQL).
test: dev lint pytest

pytest: dev
	$(BIN)/pytest

lint: dev
	$(BIN)/ruff check src tests bench stress devtools
	$(BIN)/ruff format --check src tests bench stress devtools
	$(BIN)/mypy

format: dev
	$(BIN)/ruff format src tests bench stress devtools
	$(BIN)/ruff check --fix src tests bench stress devtools

## The whole benchmark suite (< 15 min on 2 cores; installs wrk via apt and Unleash OSS into .cache/ when
## missing) and the dated summary at the top of docs/benchmarks.md. `make bench-quick`: a smoke run.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.suite

bench-quick: $(VENV)/.installed-bench
	$(BIN)/python -m bench.suite --quick --no-write

bench-ingest: dev
	$(BIN)/python -m bench.ingest

## Ingestion with the rate limit off, per process and shared by the cluster; two replicas' accepted rate (ADR 0029).
bench-rate-limit: dev
	$(BIN)/python -m bench.rate_limit

## The configuration `make serve` runs (in-process worker) under load, against `serve --no-worker`.
bench-default: dev
	$(BIN)/python -m bench.default_config

bench-latency: dev
	$(BIN)/python -m bench.latency

## A saved action set backtested over 10,000 stored signals (goal: within 2 s).
bench-backtest: dev
	$(BIN)/python -m bench.backtest

bench-events: dev
	$(BIN)/python -m bench.events_listing

## Each web console page at 1,000,000 stored events (goal: p99 ≤ 50 ms).
bench-console: dev
	$(BIN)/python -m bench.console

bench-scaleout: dev
	$(BIN)/python -m bench.scaleout

bench-memory: dev
	$(BIN)/python -m bench.memory

bench-sdk: dev
	$(BIN)/python -m bench.sdk_propagation

## What recording Prometheus metrics costs ingestion: metrics on vs off in one run (ADR 0030).
bench-metrics: dev
	$(BIN)/python -m bench.metrics_cost

## What notifications add to a worker batch: the outbox written in the batch's transaction (ADR 0027).
bench-notifications: dev
	$(BIN)/python -m bench.notifications

## Stress scripts (docs/reliability.md): faults and load against real processes; exit 1 when a promise breaks.
## Full ≈ 20–30 min (needs PostgreSQL on 127.0.0.1:5432 and /usr/lib/postgresql/15/bin for a private cluster).
stress: dev
	$(BIN)/python -m stress

stress-quick: dev
	$(BIN)/python -m stress --quick

## New migration from the difference between tables.py and a database at head: make migration m="message"
migration: dev
	$(BIN)/python -m switchman.db.autogenerate "$(m)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
