# KYC Flow: `make run` to start on the embedded defaults, `make test` for the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev lock browser run test bench lint mutation clean

# Installs come from hash-pinned locks (Python 3.11, Linux x86_64), each complete and installed with
# --no-deps, so nothing outside it is resolved: requirements.lock is the image's runtime (Dockerfile),
# requirements-embedded.lock adds the embedded database (`make run`), requirements-dev.lock the test
# toolchain (`make test`, `make lint`). The project itself goes in with --no-deps on top.
define locked_install
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(1)
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@
endef
install: $(STAMP)-run
install-dev: $(STAMP)-dev
$(STAMP)-run: pyproject.toml requirements-embedded.lock
	$(call locked_install,requirements-embedded.lock)
$(STAMP)-dev: pyproject.toml requirements-dev.lock
	$(call locked_install,requirements-dev.lock)

# After changing dependencies in pyproject.toml: new locks (needs uv: `pip install uv`). Each later lock
# keeps the pins of the one before; mediapipe is locked without the dependencies it declares (see pyproject).
# LOCK_ARGS passes more, e.g. `LOCK_ARGS="-c tested.txt"` (a `pip freeze`) to keep the versions a venv was tested with.
UV ?= uv
LOCK_FLAGS = --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" $(LOCK_ARGS)
lock:
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --extra embedded $(LOCK_FLAGS) -c requirements.lock -o requirements-embedded.lock
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -c requirements-embedded.lock -o requirements-dev.lock
	for lock in requirements.lock requirements-embedded.lock requirements-dev.lock; do \
		echo "mediapipe==0.10.21" | $(UV) pip compile - --no-deps --no-header $(LOCK_FLAGS) >> $$lock || exit 1; done

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

test: install-dev browser
	$(PY) -m pytest -n 2 --cov=app --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

bench: install-dev
	$(PY) -m bench.run

lint: install-dev
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
mutation: install-dev
	rm -rf mutants && mkdir mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS) > mutants/run.log 2>&1 \
		|| { tail -n 40 mutants/run.log; exit 1; }
	$(PY) scripts/mutation_report.py --min $(MUTATION_MIN) --survivors

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov mutants
