# KYC Flow: `make run` to start on the embedded defaults, `make test` for the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser run test bench lint mutation clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "mediapipe==0.10.21"  # ships its Face Mesh model; see pyproject
	@touch $(STAMP)

# The console's browser tests drive Debian's chromium with its chromedriver (Selenium; nothing is
# downloaded). Installed here when running as root (CI, containers); otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
			&& (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }); } \
		|| echo "browser tests will skip: install chromium and chromium-driver (Debian packages) to run them"

run: install
	$(VENV)/bin/kycflow serve --host $(HOST) --port $(PORT)

test: install browser
	$(PY) -m pytest -n 2 --cov=app --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Do the unit tests catch a wrong domain rule? mutmut ([tool.mutmut] in pyproject) mutates
# loan_schedule, loans, documents and mrz, runs tests/unit against each mutant and prints the
# kill rate per module; it fails below MUTATION_MIN %. Not part of `make test`: ~2,700 mutants,
# 12-25 minutes on one core. `make mutation MUTANTS='app.domain.mrz*'` runs one module.
# Survivors left are equivalent (listed in the issue 16 note), e.g. `ord(ch) - 55` -> `+ 55` in an
# ICAO check digit (110 x weight is 0 mod 10), or a 28-digit context where 50 digits give the same paise.
MUTATION_JOBS ?= 1
MUTATION_MIN ?= 90
mutation: install
	rm -rf mutants && mkdir mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS) > mutants/run.log 2>&1 \
		|| { tail -n 40 mutants/run.log; exit 1; }
	$(PY) scripts/mutation_report.py --min $(MUTATION_MIN) --survivors

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov mutants
