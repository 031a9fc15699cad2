"""What CI can prove about the container files without pulling or building an image: compose.yaml is
valid under the Compose specification's JSON schema (vendored in tests/data/compose-spec.json, from
github.com/compose-spec/compose-spec schema/compose-spec.json, Apache-2.0), wires MongoDB as a replica
set, takes its secrets from the environment and probes the services; the image installs exactly what
`make install` installs (the same locks, the same pip flags) and the locks agree with pyproject.toml."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("JWT_SECRET", "DOCUMENT_ENCRYPTION_KEY", "DOCUMENT_FINGERPRINT_KEY", "METRICS_TOKEN")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _validator() -> Any:
    return jsonschema_rs.validator_for(json.loads((ROOT / "tests/data/compose-spec.json").read_text()))


def test_compose_file_is_valid_under_the_compose_specification():
    validator = _validator()
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []
    broken = _compose()
    broken["services"]["api"]["healthcheck"]["retry"] = 3  # a misspelt key: the schema refuses it
    broken["services"]["worker"]["depends_on"]["mongo"]["condition"] = "service_ready"
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_runs_mongodb_as_a_replica_set_and_the_service_against_it():
    services = _compose()["services"]
    mongo = services["mongo"]
    assert "--replSet" in mongo["command"] and "rs0" in mongo["command"]
    assert "rs.initiate" in mongo["healthcheck"]["test"][1] and "isWritablePrimary" in mongo["healthcheck"]["test"][1]
    assert any(v.endswith(":/data/db") for v in mongo["volumes"])
    for name, command in (("api", ["kycflow", "serve"]), ("worker", ["kycflow", "worker"])):
        service = services[name]
        assert service["command"][:2] == command
        assert service["environment"]["MONGODB_URI"].endswith("?replicaSet=rs0")
        assert service["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert "kycflow-data:/var/lib/kycflow" in service["volumes"]  # DATA_DIR of the image
    assert services["api"]["environment"]["JOB_WORKERS"] == "0"  # jobs run in the worker
    assert services["worker"]["environment"]["METRICS_PORT"] == "9100"


def test_compose_takes_every_secret_from_the_environment_and_names_only_real_settings():
    services = _compose()["services"]
    fields = {name.upper() for name in Settings.model_fields}
    for name in ("api", "worker"):
        environment = services[name]["environment"]
        assert set(environment) <= fields, set(environment) - fields
        for secret in SECRETS:
            if secret in environment:  # required: compose refuses to start without it, no default value
                assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", environment[secret]), environment[secret]
    assert all(s in services["api"]["environment"] for s in SECRETS)


def test_the_healthchecks_use_the_probes_with_a_start_period_for_the_models():
    services = _compose()["services"]
    api = services["api"]["healthcheck"]
    assert "/api/v1/health/ready" in " ".join(api["test"]) and api["start_period"] == "180s"
    assert "127.0.0.1:9100/metrics" in " ".join(services["worker"]["healthcheck"]["test"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = re.search(r"^HEALTHCHECK (.*?)CMD (.*)$", dockerfile.replace("\\\n", " "), re.M)
    assert check and "--start-period=180s" in check.group(1) and "/api/v1/health/ready" in check.group(2)


def _pip_installs(text: str) -> list[list[str]]:
    """The arguments of each `pip install` in a Dockerfile or a Makefile (continuations joined)."""
    found = []
    for command in re.split(r"&&|\n|;", text.replace("\\\n", " ")):
        words = shlex.split(command.split("#", 1)[0]) if "pip install" in command else []
        if words:
            found.append(words[words.index("install") + 1:])
    return found


def _without(args: list[str], *noise: str) -> list[str]:
    return [a for a in args if a not in noise]


def test_the_image_installs_what_make_install_installs():
    noise = ("--quiet", "--no-cache-dir")  # output and cache only: what gets installed is the same
    image = [_without(a, *noise) for a in _pip_installs((ROOT / "Dockerfile").read_text())]
    make = [_without(a, *noise) for a in _pip_installs((ROOT / "Makefile").read_text())]
    assert image == [["--upgrade", "pip"], ["--no-deps", "--require-hashes", "-r", "requirements.lock"],
                     ["--no-deps", "."]]
    # `make install` / `make test`: the same steps, from the lock that adds the embedded database or the
    # test tools to requirements.lock's pins (checked below), and the project editable.
    assert make == [["--upgrade", "pip"], ["--no-deps", "--require-hashes", "-r", "$(1)"], ["--no-deps", "-e", "."]]
    makefile = (ROOT / "Makefile").read_text()
    assert "$(call locked_install,requirements-embedded.lock)" in makefile
    assert "$(call locked_install,requirements-dev.lock)" in makefile


def _locked(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Package -> (version, hashes) of a lock; every requirement pinned with == and hashed."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / name).read_text()):
        entry = "\n".join(line for line in entry.splitlines() if not line.lstrip().startswith("#"))
        if not entry.strip():
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s\\;]+)", entry)
        assert match, entry[:80]
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", entry))
        assert hashes, f"{match.group(1)} has no hash in {name}"
        pins[_normal(match.group(1))] = (match.group(2), hashes)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_normal(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in requirements}


@pytest.mark.parametrize("lock", ["requirements-embedded.lock", "requirements-dev.lock"])
def test_ci_tests_the_very_versions_the_image_ships(lock):
    runtime, wider = _locked("requirements.lock"), _locked(lock)
    assert {name: wider.get(name) for name in runtime} == runtime


def test_the_locks_hold_what_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = _names(project["dependencies"]) | {"mediapipe"}  # mediapipe: see the Makefile's `lock`
    assert runtime <= set(_locked("requirements.lock")), runtime - set(_locked("requirements.lock"))
    embedded = runtime | _names(extras["embedded"])
    assert embedded <= set(_locked("requirements-embedded.lock"))
    dev = embedded | _names([r for r in extras["dev"] if not r.startswith("kycflow")])
    assert dev <= set(_locked("requirements-dev.lock")), dev - set(_locked("requirements-dev.lock"))
    assert "secantusdb" not in _locked("requirements.lock")  # GPL-2.0 development server: never in the image
    assert {"jax", "opencv-contrib-python"}.isdisjoint(_locked("requirements-dev.lock"))  # mediapipe's, unused
