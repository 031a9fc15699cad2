"""Events scenarios: webhook fan-out (an auditor's approval until the signed delivery reaches a
receiver on 127.0.0.1), and what 200 idle live-event viewers cost `/health`.

- `webhook_fanout`: one approval at a time; the time from sending `PUT /kyc/{id}/approve` until
  the receiver has the `kyc.approved` delivery (event written in the approval's transaction, the
  fan-out and delivery jobs run by the server's in-process worker). Beside it, `kyc_approve`:
  the same requests' own latency, so the gate is "delivery within a few requests' time".
- `health+200_sse`: `/health` at the pace of `health_paced` (bench/ml.py) while 200 `GET /events`
  streams stay open on raw sockets (one shared poll serves them all); the gate is its p99 against
  `health_paced`'s.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from bson import ObjectId
from pymongo import MongoClient

from app.repositories.embedded import with_options
from bench.load import Result, Scenario, run_scenario
from bench.server import BenchServer

API = "/api/v1"
PASSWORD = "Bench-Customer-Pass-42"
FANOUT_RUNS = 40
VIEWERS = 200


class _Receiver:
    """Records when each delivery arrived, by the approved case's id; answers 204."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.server: Any = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                               if line.lower().startswith("content-length:")), 0)
                body = json.loads(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
                kyc_id = body["data"]["kyc_id"]
                self.arrived[kyc_id] = time.perf_counter()
                self.waiters.setdefault(kyc_id, asyncio.Event()).set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _login(client: httpx.Client, email: str) -> dict[str, Any]:
    r = client.post("/auth/login", json={"identifier": email, "password": PASSWORD})
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def _seed_cases(server: BenchServer, user_id: str, count: int) -> list[str]:
    """Submitted cases whose checks are done, waiting for a decision (written straight into the database)."""
    uri = with_options(json.loads((server.data_dir / "mongo.json").read_text())["uri"])
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        now = datetime.now(UTC) - timedelta(minutes=5)
        docs = [{"_id": ObjectId(), "user_id": user_id, "status": "SUBMITTED", "checks_state": "DONE",
                 "created_at": now, "updated_at": now, "submitted_at": now, "risk_level": "Low", "risk_rank": 2,
                 "overall_score": 90, "applicant": {"name": "Bench"}, "documents": [], "selfie": None, "checks": []}
                for _ in range(count)]
        client["kycflow"]["kyc_doc"].insert_many(docs)
        return [str(d["_id"]) for d in docs]
    finally:
        client.close()


async def webhook_fanout(server: BenchServer) -> list[Result]:
    base = f"{server.base_url}{API}"
    admin_email, auditor_email = (f"bench.{role}.{uuid.uuid4().hex[:8]}@example.com" for role in ("admin", "aud"))
    customer_email = f"bench.events.{uuid.uuid4().hex[:8]}@example.com"
    server.create_user("--role", "admin", "--email", admin_email, "--password", PASSWORD, "--name", "Admin")
    server.create_user("--role", "auditor", "--email", auditor_email, "--password", PASSWORD, "--name", "Auditor")
    server.create_user("--role", "customer", "--email", customer_email, "--password", PASSWORD, "--name", "Bench")
    receiver = _Receiver()
    await receiver.start()
    with httpx.Client(base_url=base, timeout=30) as client:
        admin, auditor = _login(client, admin_email), _login(client, auditor_email)
        customer = _login(client, customer_email)
        client.post("/admin/webhooks", headers={"Authorization": f"Bearer {admin['access_token']}"}, json={
            "url": f"http://127.0.0.1:{receiver.port}/hook", "events": ["kyc.approved"]}).raise_for_status()
    cases = _seed_cases(server, customer["user_id"], FANOUT_RUNS + 3)
    fanout, approve = Result("webhook_fanout", 1, None), Result("kyc_approve", 1, None)
    auth = {"Authorization": f"Bearer {auditor['access_token']}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client:
        for n, case_id in enumerate(cases):
            waiter = receiver.waiters.setdefault(case_id, asyncio.Event())
            start = time.perf_counter()
            ok = (await client.put(f"/kyc/{case_id}/approve", json={})).status_code == 200
            answered = time.perf_counter()
            try:
                await asyncio.wait_for(waiter.wait(), 30)
            except TimeoutError:
                ok = False
            if n < 3:  # warm-up: connections, the worker's first claims
                continue
            for result, end in ((approve, answered), (fanout, receiver.arrived.get(case_id, time.perf_counter()))):
                result.latencies_ms.append((end - start) * 1000)
                result.requests += 1
                result.errors += not ok
                result.seconds += end - start
    receiver.server.close()
    return [fanout, approve]


async def _viewer(host: str, port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {API}/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    status = await asyncio.wait_for(reader.readline(), 30)
    if b" 200 " not in status:
        raise RuntimeError(f"GET /events answered {status!r}")
    return reader, writer


async def idle_viewers(server: BenchServer) -> list[Result]:
    email = f"bench.viewer.{uuid.uuid4().hex[:8]}@example.com"
    server.create_user("--role", "customer", "--email", email, "--password", PASSWORD, "--name", "Viewer")
    with httpx.Client(base_url=f"{server.base_url}{API}", timeout=30) as client:
        token = _login(client, email)["access_token"]
    url = httpx.URL(server.base_url)
    assert url.host and url.port
    viewers = []
    for _ in range(VIEWERS // 20):  # in small batches, as browsers would arrive
        viewers += await asyncio.gather(*(_viewer(url.host, url.port, token) for _ in range(20)))
    try:
        health = httpx.Request("GET", f"{server.base_url}{API}/health")
        # Same shape as health_paced (bench/ml.py), whose p99 is the baseline.
        return await run_scenario(Scenario(f"health+{VIEWERS}_sse", health, concurrency=4, rate=50, count=400,
                                           max_s=10.0))
    finally:
        for _, writer in viewers:
            writer.close()


async def run_all(server: BenchServer) -> list[Result]:
    print(f"running webhook_fanout ({FANOUT_RUNS} approvals, each until its delivery arrives) ...", flush=True)
    results = await webhook_fanout(server)
    print(f"running health+{VIEWERS}_sse (/health at 50 req/s with {VIEWERS} idle GET /events streams) ...",
          flush=True)
    results += await idle_viewers(server)
    return results
