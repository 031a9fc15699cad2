"""Rate limiting's cost: `GET /users/me` with the shared limits on (the main bench server: one
`$inc` upsert in MongoDB per request) against a second server with RATE_LIMITS_ENABLED=false,
driven the same way in the same run; the gate is the ratio of their rates.

The main server keeps the limits on for the whole bench, with limits no scenario reaches
(SERVER_ENV): every other figure then includes the limiter's cost, and no scenario is refused.
The two servers take turns (off, on, off, on) so a change in the machine's load hits both alike.
"""

from __future__ import annotations

import json

import httpx

from bench.load import Result, Scenario, run_scenario
from bench.server import BenchServer

API = "/api/v1"
EMAIL, PASSWORD = "bench.limits@example.com", "Bench-Limits-Pass-42"
# Counted like any other limit, never reached: the bench drives thousands of requests a second.
SERVER_ENV = {"RATE_LIMITS_ENABLED": "true", "RATE_LIMITS": json.dumps(
    {group: "1000000000/minute" for group in ("auth", "otp", "verification", "default")})}
ROUNDS, COUNT = 2, 8000


def _me(server: BenchServer) -> httpx.Request:
    server.create_user("--role", "customer", "--email", EMAIL, "--password", PASSWORD, "--name", "Bench Limits")
    resp = httpx.post(f"{server.base_url}{API}/auth/login", json={"identifier": EMAIL, "password": PASSWORD})
    resp.raise_for_status()
    return httpx.Request("GET", f"{server.base_url}{API}/users/me",
                         headers={"Authorization": f"Bearer {resp.json()['access_token']}"})


def _merge(name: str, parts: list[Result]) -> Result:
    out = Result(name, parts[0].concurrency, None)
    for part in parts:
        out.requests += part.requests
        out.errors += part.errors
        out.seconds += part.seconds
        out.latencies_ms += part.latencies_ms
    return out


async def run_all(server: BenchServer) -> list[Result]:
    """`users_me_limits_on` (this server) and `users_me_limits_off` (a second one, models not loaded:
    /users/me never touches them)."""
    print("starting a second server with RATE_LIMITS_ENABLED=false ...", flush=True)
    with BenchServer(RATE_LIMITS_ENABLED="false", ML_PRELOAD="false") as off_server:
        requests = {"off": _me(off_server), "on": _me(server)}
        parts: dict[str, list[Result]] = {"off": [], "on": []}
        for _ in range(ROUNDS):
            for state in ("off", "on"):
                name = f"users_me_limits_{state}"
                print(f"running {name} (16 workers, <= {COUNT} requests) ...", flush=True)
                parts[state] += await run_scenario(Scenario(name, requests[state], count=COUNT, warmup_s=2.0))
    return [_merge(f"users_me_limits_{state}", parts[state]) for state in ("off", "on")]


def ratio(results: dict[str, Result]) -> float:
    return results["users_me_limits_on"].rps / results["users_me_limits_off"].rps
