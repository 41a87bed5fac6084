# One set of commands for people, pre-commit and CI.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NATIVE := ingestor/_native.abi3.so
READY  := $(STAMP) $(NATIVE)

.PHONY: run test unit lint bench bench-e2e soak setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The watcher's Rust line reader (native/): without cargo the Python reads every line, slower.
$(NATIVE): native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
	@if command -v cargo >/dev/null 2>&1; then \
	  cargo build --release --quiet --locked --manifest-path native/Cargo.toml \
	  && cp native/target/release/lib_native.so $@.tmp && mv -f $@.tmp $@; \
	else echo "make: no cargo here: the watcher reads every line in Python (slower)" >&2; fi

setup: $(READY)

## run: set up, start the embedded stack (Tansu + chdb) and ingest ~/.claude/projects (or DIRS=...)
run: $(READY)
	$(BIN)/ingestor up $(DIRS)

## test: set up, lint and type-check, then every test (integration ones use Tansu and chdb),
## three at a time (TEST_WORKERS=): they mostly wait on brokers and child processes, not the CPU
test: $(READY) lint
	$(BIN)/pytest -q -n $${TEST_WORKERS:-3} --dist worksteal

unit: $(READY)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check ingestor tests bench examples
	$(BIN)/ruff format --check ingestor tests bench examples
	$(BIN)/mypy

## bench: `up --once` vs ccusage per corpus size (LINES=100000,300000,1000000; add 5000000 for
## the 5M row), fixed cost, peak RSS against the engine's baseline, daily/monthly/session reports
## after the largest ingest (CLI and running worker vs ccusage); the streaming latency at 5k
## lines/s; then the SDK's overhead
bench: $(READY)
	$(BIN)/python -m bench.backfill
	$(BIN)/python -m bench.streaming
	$(BIN)/python -m bench.sdk

## bench-e2e: the worker and watcher alone on one corpus (LINES=1000000), with ceilings, and a
## screenshot of the dashboard after the ingest (bench/out/dashboard.png, with Chromium)
bench-e2e: $(READY)
	$(BIN)/python -m bench.e2e --lines $${LINES:-1000000} --screenshot bench/out/dashboard.png

## soak: the long runs: the fault suite at 50 random points (FAULT_POINTS=, FAULT_LINES=,
## FAULT_SEED=), then the heavy variants (3 Apache Kafka brokers, worker and broker kills)
soak: $(READY)
	INGESTOR_FAULT_POINTS=$${FAULT_POINTS:-50} INGESTOR_FAULT_LINES=$${FAULT_LINES:-30000} \
	INGESTOR_FAULT_SEED=$${FAULT_SEED:-0} INGESTOR_FAULT_LONG=1 $(BIN)/pytest -q -s -m faults \
	  -o timeout=3600 tests/integration/test_faults.py tests/integration/test_upstream_faults.py
	INGESTOR_SOAK=1 $(BIN)/pytest -q -m soak -s

clean:
	rm -rf $(VENV) .ingestor .mypy_cache .ruff_cache .pytest_cache native/target $(NATIVE)
