"""Capacity of one instance on this machine (information, no gate): a customer-facing mix at
rising concurrency, its saturation point, and what the model pool sustains alone.

- `capacity@N`: N closed-loop virtual users (STEPS, 1 to 64), each on its own keep-alive
  connection, each request drawn from MIX by weight (browse products, `/users/me`, KYC status, an
  eligibility check), as a few customers (CUSTOMERS). During each step N/2 (at least 1) `GET /events`
  streams stay open and one `POST /kyc/verify` (real models) starts every VERIFY_EVERY_S seconds;
  those verifications make the `capacity_verify_bg` row (errors of either count in theirs).
- Saturation: the first step whose throughput is within 10 % of the highest step's: doubling the
  users from there adds less than 10 % throughput, only queueing (a closed loop: p99 about doubles
  per step, by Little's law, printed beside it as the evidence). Measured against the highest step,
  not the next one, so one noisy step on a shared machine does not end the search early. The last
  step still growing 10 % or more: not saturated within STEPS, said so.
- `capacity_ml_alone`: `/kyc/verify` closed-loop with two requests per model worker and nothing
  else: the verifications per second the pool sustains (each is a face match and an OCR, run side
  by side in two workers).

The sizing in the README's scaling section is worked out from these figures.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import subprocess
import time
import uuid
from collections import defaultdict

import httptools
import httpx

from bench.events import _viewer
from bench.load import SELECTION, Result, _wire, send
from bench.ml import Inputs
from bench.server import BenchServer, _kycflow

API = "/api/v1"
PASSWORD = "Bench-Customer-Pass-42"
STEPS = (1, 2, 4, 8, 16, 32, 64)
STEP_S, WARMUP_S = 10.0, 1.0
CUSTOMERS = 4
VERIFY_EVERY_S = 3.0
ML_ALONE_S, ML_WARMUP_S = 30.0, 5.0
MIX = {"products": 30, "users_me": 25, "kyc_status": 25, "eligibility": 20}  # weights, per request
GROWTH = 0.10  # less than this much more throughput from doubling the users: saturated
NAMES = ("capacity", *(f"capacity@{n}" for n in STEPS), "capacity_verify_bg", "capacity_ml_alone")  # for --only


def _mix(base: str, token: str, product_id: str) -> dict[str, httpx.Request]:
    auth = {"Authorization": f"Bearer {token}"}
    return {"products": httpx.Request("GET", f"{base}{API}/loans/products", params={"page_size": 20}, headers=auth),
            "users_me": httpx.Request("GET", f"{base}{API}/users/me", headers=auth),
            "kyc_status": httpx.Request("GET", f"{base}{API}/users/me/kyc-status", headers=auth),
            "eligibility": httpx.Request("POST", f"{base}{API}/eligibility/check", headers=auth,
                                         json={"product_id": product_id, "amount": 300000, "tenure_months": 36})}


def _customers(server: BenchServer) -> tuple[list[str], str]:
    """CUSTOMERS new customers' tokens and a product id (the sample catalogue, seeded if not yet)."""
    out = subprocess.run([*_kycflow(), "seed-catalogue"], env=server.env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"seed-catalogue failed: {out.stderr or out.stdout}")
    tokens = []
    with httpx.Client(base_url=f"{server.base_url}{API}", timeout=60) as client:
        for _ in range(CUSTOMERS):
            email = f"bench.capacity.{uuid.uuid4().hex[:8]}@example.com"
            server.create_user("--role", "customer", "--email", email, "--password", PASSWORD, "--name", "Bench")
            resp = client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
            resp.raise_for_status()
            tokens.append(resp.json()["access_token"])
        products = client.get("/loans/products", headers={"Authorization": f"Bearer {tokens[0]}"})
        products.raise_for_status()
    return tokens, products.json()["items"][0]["id"]


async def _user(host: str, port: int, mixes: list[dict[str, bytes]], seed: int, t0: float, stop: asyncio.Event,
                out: Result, by_kind: dict[str, list[float]]) -> None:
    """One virtual user: a request, its answer, the next (no think time: a closed loop)."""
    rng, kinds, weights = random.Random(seed), list(MIX), list(MIX.values())
    mix = mixes[seed % len(mixes)]
    conn = None
    while not stop.is_set():
        kind = rng.choices(kinds, weights)[0]
        start = time.perf_counter()
        try:
            async with asyncio.timeout(30):
                conn = conn or await asyncio.open_connection(host, port)
                ok = await send(conn, mix[kind]) == 200
        except (OSError, httptools.HttpParserError):
            ok, conn = False, None
        end = time.perf_counter()
        if start >= t0:
            out.latencies_ms.append((end - start) * 1000)
            by_kind[kind].append((end - start) * 1000)
            out.requests += 1
            out.errors += not ok
            out.seconds = max(out.seconds, end - t0)
    if conn:
        conn[1].close()


async def _verify_once(host: str, port: int, data: bytes, window: tuple[float, float], out: Result) -> None:
    """One verification on its own connection, counted when it ends within `window`."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(60):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                ok = await send((reader, writer), data) == 200
            finally:
                writer.close()
    except (OSError, httptools.HttpParserError):
        ok = False
    end = time.perf_counter()
    if window[0] <= end <= window[1] or not ok:
        out.latencies_ms.append((end - start) * 1000)
        out.requests += 1
        out.errors += not ok


async def _drain(reader: asyncio.StreamReader) -> None:
    """Read a stream until the server ends it (an error of the step when that happens within it)."""
    try:
        while await reader.read(65536):
            pass
    except OSError:
        pass


async def _step(users: int, mixes: list[dict[str, bytes]], tokens: list[str], verify: bytes, host: str, port: int,
                verified: Result) -> tuple[Result, dict[str, list[float]]]:
    opened = await asyncio.gather(*(_viewer(host, port, tokens[i % len(tokens)]) for i in range(max(1, users // 2))),
                                  return_exceptions=True)
    streams = [s for s in opened if not isinstance(s, BaseException)]
    drains = [asyncio.create_task(_drain(reader)) for reader, _ in streams]
    result, by_kind = Result(f"capacity@{users}", users, None), defaultdict[str, list[float]](list)
    stop, t0 = asyncio.Event(), time.perf_counter() + WARMUP_S
    workers = [asyncio.create_task(_user(host, port, mixes, seed, t0, stop, result, by_kind)) for seed in range(users)]
    checks: list[asyncio.Task[None]] = []
    deadline = t0 + SELECTION.seconds(STEP_S, least=3.0)
    for tick in itertools.count():
        at = t0 + tick * VERIFY_EVERY_S
        if at >= deadline:
            break
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        checks.append(asyncio.create_task(_verify_once(host, port, verify, (t0, math.inf), verified)))
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    stop.set()
    await asyncio.gather(*workers, *checks)
    lost = sum(t.done() for t in drains)  # a stream the server ended within the step
    for task, (_, writer) in zip(drains, streams):
        writer.close()
        task.cancel()
    result.errors += lost + len(opened) - len(streams)  # ended early, or refused
    return result, by_kind


def _pct(values: list[float], q: float) -> float:
    return Result("", 0, None, latencies_ms=values).pct(q)


def saturation(results: dict[str, Result]) -> tuple[Result, bool]:
    """The saturation step, and whether it was reached within STEPS."""
    steps = [results[f"capacity@{n}"] for n in STEPS if f"capacity@{n}" in results]
    if not steps:
        raise KeyError("capacity@1")
    peak = max(step.rps for step in steps)
    point = next(step for step in steps if step.rps >= peak * (1 - GROWTH))
    # Not reached: the last step still added GROWTH or more over the one before it.
    reached = point is not steps[-1] or len(steps) < 2 or steps[-1].rps < steps[-2].rps * (1 + GROWTH)
    return point, reached


def saturation_users(results: dict[str, Result]) -> float:
    return saturation(results)[0].concurrency


def saturation_rps(results: dict[str, Result]) -> float:
    return saturation(results)[0].rps


async def ml_alone(host: str, port: int, verify: bytes) -> Result:
    """Verifications ending within the window, over its length: requests overlap and each lasts
    seconds, so counting those started in it would miss the ones still running at its end."""
    workers = int(os.environ.get("ML_WORKERS") or os.cpu_count() or 2)  # the service's default
    result = Result("capacity_ml_alone", 2 * workers, None)
    start = time.perf_counter() + ML_WARMUP_S  # every worker busy, none counted yet
    window = (start, start + SELECTION.seconds(ML_ALONE_S, least=20.0))
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await _verify_once(host, port, verify, window, result)

    tasks = [asyncio.create_task(loop()) for _ in range(result.concurrency)]
    await asyncio.sleep(window[1] - time.perf_counter())
    stop.set()
    await asyncio.gather(*tasks)
    result.seconds = window[1] - window[0]
    return result


async def run_all(server: BenchServer, inputs: Inputs | None) -> list[Result]:
    url = httpx.URL(server.base_url)
    assert url.host and url.port
    host, port = url.host, url.port
    tokens, product_id = _customers(server)
    mixes = [{k: _wire(r) for k, r in _mix(server.base_url, t, product_id).items()} for t in tokens]
    inputs = inputs or Inputs()
    verify = _wire(httpx.Request("POST", f"{server.base_url}{API}/kyc/verify",
                                 headers={"Authorization": f"Bearer {tokens[0]}"},
                                 files={"id_document": ("card.jpg", inputs.card, "image/jpeg"),
                                        "selfie_image": ("selfie.jpg", inputs.selfie, "image/jpeg")}))
    results, verified = [], Result("capacity_verify_bg", 1, 1 / VERIFY_EVERY_S)
    for users in STEPS:
        print(f"running capacity@{users} ({users} virtual users, {max(1, users // 2)} event streams, "
              f"a verification every {VERIFY_EVERY_S:.0f}s, {SELECTION.seconds(STEP_S, least=3.0):.0f}s) ...",
              flush=True)
        step, by_kind = await _step(users, mixes, tokens, verify, host, port, verified)
        results.append(step)
        print(f"  {step.rps:.1f} req/s, p50 {step.pct(50):.1f} ms, p99 {step.pct(99):.1f} ms, {step.errors} errors; "
              + ", ".join(f"{k} p50 {_pct(v, 50):.1f}" for k, v in sorted(by_kind.items())), flush=True)
    verified.seconds = sum(step.seconds for step in results)  # paced: its rate over the steps' time
    results.append(verified)
    print("running capacity_ml_alone (/kyc/verify, closed loop, 2 per model worker) ...", flush=True)
    results.append(await ml_alone(host, port, verify))
    _summary(results)
    return results


def _summary(results: list[Result]) -> None:
    by_name = {r.name: r for r in results}
    point, reached = saturation(by_name)
    load = os.getloadavg()[0]
    print(f"capacity of one instance on {os.uname().nodename}, {os.cpu_count()} cores (load avg {load:.1f}):")
    for this, nxt in itertools.pairwise([by_name[f"capacity@{n}"] for n in STEPS]):
        print(f"  {this.concurrency:>2} -> {nxt.concurrency:>2} users: throughput x{nxt.rps / this.rps:.2f}, "
              f"p99 x{nxt.pct(99) / this.pct(99):.2f}")
    verdict = "saturates at" if reached else "not saturated up to"
    ml = by_name["capacity_ml_alone"]
    print(f"  one instance {verdict} {point.concurrency} virtual users: {point.rps:.0f} req/s of the mix, "
          f"p99 {point.pct(99):.0f} ms; the model pool alone: {ml.rps:.2f} verifications/s")
