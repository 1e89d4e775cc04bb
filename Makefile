# medcl: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
# The virtual environment (.venv) is created when missing and reused when present; it is
# (re)installed from the exact pin set in constraints.txt whenever pyproject.toml or the pins change.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.medcl-installed
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast bench lint clean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "medcl needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=69" wheel
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(BIN)/medcl demo --out runs/demo

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/bench_losses.py

lint: venv
	$(BIN)/ruff check shared apps tests benchmarks setup.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
