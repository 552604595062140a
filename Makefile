# One entry point for every task. `make demo` and `make test` work on a fresh machine with
# Python 3.11+: they create .venv and install the project into it first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
DEMO_ARGS ?=

.PHONY: install demo test test-fast test-security test-browser chromium lint typecheck proto proto-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP) $(RUNTIME)

# The demo needs the runtime only (no test or lint tools): a fresh machine is ready in a
# fraction of the time, and pip shows what it fetches.
$(RUNTIME): pyproject.toml
	@echo "== installing fedsync's runtime into $(VENV) (first run only; no dev tools) =="
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on --upgrade pip
	$(BIN)/pip install --progress-bar on -e .
	touch $(RUNTIME)

install: $(STAMP)

demo: $(RUNTIME)          ## the hub and 14 cities on this machine; Ctrl-C stops it (DEMO_ARGS="--cities 2 --lang en")
	$(BIN)/fedsync demo $(DEMO_ARGS)

TEST_WORKERS ?= 2
test: $(STAMP)            ## the whole suite: unit, integration, faults, security, browser (SQLite and PostgreSQL); TEST_WORKERS=0 runs it in one process
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-fast: $(STAMP)       ## unit and integration tiers only
	$(BIN)/python -m pytest -q tests/unit tests/integration

test-security: $(STAMP)   ## the security promises (README "Security")
	$(BIN)/python -m pytest -q tests/security

test-browser: $(STAMP) chromium   ## the city console in a real Chromium
	$(BIN)/python -m pytest -q tests/browser

chromium:                 ## the browser tests use Debian's chromium (Playwright downloads none)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

proto: $(STAMP)           ## regenerate sync/pb from proto/
	$(BIN)/python scripts/gen_protos.py

proto-check: $(STAMP)     ## fail when sync/pb differs from what proto/ generates
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/sync/test_proto_fresh.py

bench: $(STAMP)           ## ingest, city month report and register throughput, supervisor web latency, notice fan-out latency, SQLite then PostgreSQL (needs FEDSYNC_BENCH_DATABASE_URL or local PostgreSQL)
	$(BIN)/python -m benchmarks.ingest --engine sqlite
	$(BIN)/python -m benchmarks.rules
	$(BIN)/python -m benchmarks.ingest --engine postgresql
	$(BIN)/python -m benchmarks.city_reports --engine sqlite --reuse
	$(BIN)/python -m benchmarks.city_reports --engine postgresql --reuse
	$(BIN)/python -m benchmarks.city_register --engine sqlite
	$(BIN)/python -m benchmarks.city_register --engine postgresql
	$(BIN)/python -m benchmarks.hub_web --engine sqlite --reuse
	$(BIN)/python -m benchmarks.hub_web --engine postgresql --reuse
	$(BIN)/python -m benchmarks.notice_fanout --engine sqlite
	$(BIN)/python -m benchmarks.notice_fanout --engine postgresql
	$(BIN)/python -m benchmarks.notice_fanout --engine postgresql --replicas 2

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache fedsync-data
