# The two commands a newcomer needs: `make serve` and `make test`.
# Each creates .venv and installs what it needs from pyproject.toml first.

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PIP = $(VENV)/bin/python -m pip --disable-pip-version-check
# `-e` for a working copy; the Docker image installs the same extras without it.
EDITABLE ?= -e

.PHONY: serve test install-serve install-dev system-deps lint format default-model clean

serve: install-serve
	$(VENV)/bin/liveness serve --host $(HOST) --port $(PORT)

test: install-dev system-deps
	$(VENV)/bin/python -m pytest

install-serve: $(VENV)/.serve-installed
install-dev: $(VENV)/.dev-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.serve-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q $(EDITABLE) ".[serve]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q $(EDITABLE) ".[serve,train,dev]"
	touch $@ $(VENV)/.serve-installed

# Debian packages the test suite drives for real (nginx for the scale-out test,
# Chromium for the demo page test). Installs only what is missing.
system-deps:
	@sh scripts/system-deps.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
