"""Property-based requests generated from /openapi.json against a real server: no input,
however odd, may produce a 500 (schemathesis)."""

from __future__ import annotations

import subprocess

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import PASSWORD
from tests.e2e.test_server_process import KYCFLOW, _env, start_server


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    # Generous limits: the fuzzer calls the code-sending routes many times a second.
    env = _env(data_dir, LOGIN_OTP="off", ML_PRELOAD="false", OTP_RESEND_COOLDOWN_SECONDS="0",
               OTP_MAX_SENDS_PER_HOUR="100000", LOGIN_MAX_FAILURES="100000", LOG_LEVEL="WARNING")
    with start_server(data_dir.parent, env) as (base, proc):
        subprocess.run([KYCFLOW, "create-user", "--email", "fuzz@example.com", "--password", PASSWORD, "--name",
                        "Fuzz", "--role", "admin"], env=env, check=True, capture_output=True, timeout=60)
        token = httpx.post(f"{base}/api/v1/auth/login",
                           json={"identifier": "fuzz@example.com", "password": PASSWORD}).json()["access_token"]
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        # Routes that end sessions would log the fuzzer out half-way, and GET /events streams until the
        # token expires: tested elsewhere (tests/e2e/test_live_events.py).
        yield schema.exclude(path_regex="logout|change-password|/status$|/api-keys/|/events$").include(
            method=["GET", "POST", "PUT", "PATCH"]), base, token


def test_no_input_makes_a_server_error(api_schema):
    schema, base, token = api_schema
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  phases=[Phase.explicit, Phase.generate])
        def check(case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base, headers=headers, timeout=60)
            if response.status_code >= 500 or (response.status_code >= 400 and "error_code" not in response.text):
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        check()
    assert calls > 10 * len(operations) // 2, calls
    assert not failures, "\n".join(sorted(set(failures))[:10])
