# seedance-pipeline — every target bootstraps .venv with pip when it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Python may cache what it compiles (__pycache__/, git-ignored) whatever the shell says: this
# box's shell sets PYTHONDONTWRITEBYTECODE=1, and then each of the few hundred Python processes
# a test run starts (the CLI, stacks, workers, emulators) compiled every module it imported from
# source: 1.4 s of CPU for a `starter.py --help`, against 0.7 s from the cache.
unexport PYTHONDONTWRITEBYTECODE
# Three processes, whole files each (a file's fixtures and servers stay in one process): most
# tests wait on real servers, so three beat two on two cores (402 s against 480 s). Files go out
# in collection order, the heaviest first (tests/conftest.py, HEAVY_FIRST). PYTEST_ARGS= runs it
# serially.
PYTEST_ARGS ?= -n 3 --dist loadfile --no-loadscope-reorder

.PHONY: help venv up down demo doctor test lint format typecheck pytest clean

help:
	@echo "make demo   - set up everything and run three jobs end to end on the embedded stack"
	@echo "make test   - lint (ruff, mypy) and the whole test suite, as CI runs it"
	@echo "make up     - start the embedded stack; ready once the worker polls its queues"
	@echo "make down   - stop what 'make up' started"
	@echo "make doctor - the stack's health: this shell's view and the worker's own checks"
	@echo "make chaos  - fault scenarios against the embedded stack -> docs/reliability.md"

# uv installs the same versions pip resolves (pip freeze of both venvs is identical) in 14 s
# where pip took 90 s on a fresh clone: it downloads in parallel and skips byte-compiling.
# uv reads PyPI (UV_INDEX_URL and UV_EXTRA_INDEX_URL if set), not pip.conf.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/python -m seedance_pipeline.stack up

down:
	@test -x $(BIN)/python && $(BIN)/python -m seedance_pipeline.stack down || echo "nothing to stop"

demo: $(STAMP)
	$(BIN)/python -m seedance_pipeline.stack demo

doctor: $(STAMP)
	$(BIN)/python starter.py doctor

.PHONY: screenshots chromium
chromium:  # headless Chromium for the screenshot tests (Debian's package)
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

screenshots: $(STAMP) chromium  # Web UI screenshots for the README (docs/screenshots/)
	$(BIN)/python -m seedance_pipeline.stack.screenshots

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP) pg-deps chromium
	$(BIN)/pytest -q $(PYTEST_ARGS)

# mypy (one core for about 25 s) runs beside the suite, whose processes mostly wait on servers;
# each target's output is printed whole when it ends.
test: lint
	$(MAKE) --no-print-directory -j2 --output-sync=target typecheck pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: down
	rm -rf .data .mypy_cache .ruff_cache .pytest_cache

# PostgreSQL for the ledger's tests (stdlib only: works before the venv exists).
.PHONY: pg-deps pg-up pg-down

pg-deps:
	$(PY) -m seedance_pipeline.stack.postgres deps

pg-up: pg-deps
	$(PY) -m seedance_pipeline.stack.postgres up

pg-down:
	$(PY) -m seedance_pipeline.stack.postgres down

.PHONY: bench bench-smoke
# Benchmarks on a private embedded stack (free ports, temp data dir); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m bench

.PHONY: chaos
# Fault scenarios (worker SIGKILLs, Temporal restart, webhook outage, network resets, provider
# storms) on a private embedded stack; invariants checked after each; writes docs/reliability.md.
chaos: $(STAMP)
	$(BIN)/python -m chaos

# A few jobs per scenario (< 60 s); tests/bench runs the same command.
bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke
