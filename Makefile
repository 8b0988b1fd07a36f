# The two commands of the README: `make run` and `make test`. Everything else is a step they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime only: exactly what `pip install -e .` gives an operator.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Runtime plus what the tests need.
$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/ozgflow init
	$(BIN)/ozgflow serve --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check engine web connectors ozgflow tests bench

test: lint
	$(BIN)/pytest

bench: install-test
	$(BIN)/python -m bench $(if $(BENCH),--scenario $(BENCH))

clean:
	rm -rf $(VENV) var build *.egg-info
