# KYC Flow: `make run` to start on the embedded defaults, `make test` for the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "mediapipe==0.10.21"  # ships its Face Mesh model; see pyproject
	@touch $(STAMP)

run: install
	$(VENV)/bin/kycflow serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest -n 2 --cov=app --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
