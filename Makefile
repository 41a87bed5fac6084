# One set of commands for people, pre-commit and CI.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit lint bench setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## run: set up, start the embedded stack (Tansu + chdb) and ingest ~/.claude/projects (or DIRS=...)
run: $(STAMP)
	$(BIN)/ingestor up $(DIRS)

## test: set up, lint and type-check, then every test (integration ones use Tansu and chdb)
test: $(STAMP) lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check ingestor tests bench examples
	$(BIN)/ruff format --check ingestor tests bench examples
	$(BIN)/mypy

## bench: end-to-end figures on a generated corpus (LINES=1000000) and a screenshot of the
## dashboard after the ingest (bench/out/dashboard.png, with Chromium), then the SDK's overhead
bench: $(STAMP)
	$(BIN)/python -m bench.e2e --lines $${LINES:-1000000} --screenshot bench/out/dashboard.png
	$(BIN)/python -m bench.sdk

clean:
	rm -rf $(VENV) .ingestor .mypy_cache .ruff_cache .pytest_cache
