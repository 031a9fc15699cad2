"""`GET /events` over a real HTTP server (uvicorn on 127.0.0.1) with a separate `kycflow worker`
process: two customers and an auditor each receive exactly their own events, the worker's
included; a reconnect with Last-Event-ID replays what was missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from bson import ObjectId

from app.domain.audit import ClientInfo
from app.main import create_app
from app.repositories import events as events_repo
from app.repositories.database import close_client, make_client
from tests.conftest import PASSWORD, Api, bearer, free_port, make_settings
from tests.e2e.test_server_process import KYCFLOW, _env, start_server
from tests.integration.events_helpers import open_case_with_documents
from tests.integration.lending_helpers import apply_body, borrower, make_product

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stream:
    """One EventSource-like reader: collects `(id, type, data)` and counts heartbeats."""

    client: httpx.AsyncClient
    token: str
    last_event_id: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    status: int | None = None
    content_type: str | None = None
    task: asyncio.Task[None] | None = None

    def start(self) -> Stream:
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        async with self.client.stream("GET", "/events", headers=headers, timeout=httpx.Timeout(10, read=None)) as r:
            self.status, self.content_type = r.status_code, r.headers.get("content-type")
            current: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.heartbeats += 1
                elif line.startswith(("id: ", "event: ")):
                    key, _, value = line.partition(": ")
                    current[key] = value
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    assert data["type"] == current["event"]
                    self.events.append({"id": current["id"], "type": data["type"], "data": data["data"]})
                    current = {}

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def _until(check: Any, timeout: float = 20.0, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
async def served(mongo_uri, smtp, tmp_path, shared_models):
    """The app behind a real uvicorn server on 127.0.0.1, no in-process job workers."""
    mailbox, smtp_port = smtp
    settings = make_settings(mongo_uri, tmp_path / "data", smtp_port, job_workers=0, events_poll_seconds=0.1,
                             events_heartbeat_seconds=0.5, kyc_require_selfie=False)
    app = create_app(settings, ml_loaders=shared_models.loaders())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve())
    await _until(lambda: server.started, 20, "the server")
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10)
    try:
        yield Api(client=client, container=app.state.container, mailbox=mailbox, settings=settings)
    finally:
        await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        db_client = make_client(mongo_uri)
        await db_client.drop_database(settings.mongodb_db)
        await close_client(db_client)


def _worker(api: Api, log: Path) -> subprocess.Popen[bytes]:
    """`kycflow worker` on the same database and data directory (its document keys)."""
    s = api.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "SMTP_", "JWT_", "JOB_", "KYC_"))}
    env.update({"ENVIRONMENT": "test", "MONGODB_URI": str(s.mongodb_uri), "MONGODB_DB": s.mongodb_db,
                "DATA_DIR": str(s.data_dir), "JWT_SECRET": s.resolve_jwt_secret(), "ML_PRELOAD": "false",
                "ML_PROCESSES": "false", "JOB_POLL_SECONDS": "0.1", "KYC_REQUIRE_SELFIE": "false",
                "PYTHONPATH": str(ROOT)})
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(['worker']))"],
                                env=env, cwd=s.data_dir, stdout=out, stderr=subprocess.STDOUT)


async def test_each_viewer_gets_exactly_its_own_events_from_any_process_and_resumes(served, tmp_path):
    api = served
    c = api.container
    product = await make_product(api, min_tenure_months=1)
    a = await borrower(api, kyc=False, income=200000.0)
    b = await api.customer()
    auditor, admin = await api.staff("auditor"), await api.staff("admin")

    r = await api.client.get("/events")
    assert r.status_code == 401 and r.json()["error_code"] == "not_authenticated"
    r = await api.client.get("/events", headers={**bearer(b), "Last-Event-ID": "../../etc"})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_last_event_id"

    sa, sb, ss = (Stream(api.client, t["access_token"]).start() for t in (a, b, auditor))
    await _until(lambda: c.events_hub.viewers == 3, what="three viewers")
    polls_before = c.events_hub.polls
    await asyncio.sleep(1.0)
    # One shared query per poll interval (0.1 s) for all three viewers, not one per viewer.
    assert c.events_hub.polls - polls_before <= 12

    cases = {}
    for who in (a, b):
        await open_case_with_documents(c, who["user_id"])
        cases[who["user_id"]] = (await c.kyc.submit(await c.users_repo.get(who["user_id"]), ClientInfo())).id
    log = tmp_path / "worker.log"
    worker = _worker(api, log)
    try:
        await _until(lambda: "kyc.checks_completed" in sa.types() and "kyc.checks_completed" in sb.types(), 30,
                     f"the worker's events; worker log:\n{log.read_text() if log.exists() else ''}")
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 15)
    produced_by = ObjectId(next(e["id"] for e in sa.events if e["type"] == "kyc.checks_completed")).binary[6:9]
    assert produced_by != events_repo._PROCESS  # written by the worker process, not this one

    r = await api.client.put(f"/kyc/{cases[a['user_id']]}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 200, r.text
    r = await api.client.put(f"/kyc/{cases[b['user_id']]}/reject", headers=bearer(auditor),
                             json={"reason": "document_unreadable"})
    assert r.status_code == 200, r.text
    r = await api.client.post("/loans/apply", headers=a["headers"], json=apply_body(product, amount=60000,
                                                                                     tenure_months=1))
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    await _until(lambda: len(sa.events) == 4 and len(sb.events) == 3 and len(ss.events) == 6, what="the decisions")
    await asyncio.sleep(0.5)  # nothing else arrives

    assert sa.status == 200 and sa.content_type.startswith("text/event-stream")
    assert sa.types() == ["kyc.submitted", "kyc.checks_completed", "kyc.approved", "loan.applied"]
    assert sb.types() == ["kyc.submitted", "kyc.checks_completed", "kyc.rejected"]
    assert {e["data"]["kyc_id"] for e in sa.events[:3]} == {cases[a["user_id"]]}
    assert {e["data"]["kyc_id"] for e in sb.events} == {cases[b["user_id"]]}
    assert sa.events[3]["data"]["loan_id"] == loan_id and sa.events[3]["data"]["amount"] == "60000.00"
    assert sb.events[2]["data"] == {"kyc_id": cases[b["user_id"]], "status": "REJECTED", "level": "standard",
                                    "reason": "document_unreadable", "reasons": ["document_unreadable"],
                                    "reject_type": "RETRY"}
    # Staff see the review queue (every case's kyc.* events), never a customer's loan.
    assert sorted((e["type"], e["data"]["kyc_id"]) for e in ss.events) == sorted(
        (e["type"], e["data"]["kyc_id"]) for e in sa.events[:3] + sb.events)
    assert sb.heartbeats >= 1

    # A goes away; while away, the loan is approved; the reconnect replays exactly what was missed.
    last_seen = sa.events[-1]["id"]
    await sa.close()
    await _until(lambda: c.events_hub.viewers == 2, what="the viewer to leave")
    r = await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))
    assert r.status_code == 200, r.text
    again = Stream(api.client, a["access_token"], last_event_id=last_seen).start()
    await _until(lambda: len(again.events) >= 1, what="the replay")
    await asyncio.sleep(0.5)
    assert again.types() == ["loan.approved"] and again.events[0]["data"]["loan_id"] == loan_id
    assert len(sb.events) == 3 and len(ss.events) == 6  # a loan is the customer's alone

    # A stream lasts as long as its access token: then it ends, and the client reconnects with a new one.
    c.clock.advance(seconds=api.settings.access_token_ttl_seconds + 1)
    await asyncio.wait_for(asyncio.gather(again.task, sb.task, ss.task), 10)
    assert c.events_hub.viewers == 0


async def test_a_server_asked_to_stop_ends_its_live_streams_cleanly(mongo_uri, tmp_path):
    """Uvicorn waits for open responses before it shuts down; the hub ends every stream first, so
    SIGTERM stops `kycflow serve` promptly and each client sees its stream end, not hang."""
    data_dir = tmp_path / "var"
    db_name = f"sse_{ObjectId()}"
    env = _env(data_dir, MONGODB_URI=mongo_uri, MONGODB_DB=db_name, JWT_SECRET="sse-test-" + "x" * 32,
               ML_PRELOAD="false", EVENTS_HEARTBEAT_SECONDS="30")
    out = await asyncio.to_thread(subprocess.run, [KYCFLOW, "create-user", "--email", "sse@example.com", "--password",
                                                   PASSWORD, "--name", "Viewer", "--role", "customer"],
                                  env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    try:
        with start_server(tmp_path, env) as (base, proc):
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=10) as client:
                tokens = (await client.post("/auth/login", json={"identifier": "sse@example.com",
                                                                 "password": PASSWORD})).json()
                stream = Stream(client, tokens["access_token"]).start()
                await _until(lambda: stream.status == 200, what="the stream")
                started = asyncio.get_running_loop().time()
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(stream.task, 10)  # the stream ends (no exception, no hang)
                # Uvicorn shuts down gracefully, then re-raises the signal it caught (hence -SIGTERM).
                assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGTERM
                assert asyncio.get_running_loop().time() - started < 10
        log = (tmp_path / "server.log").read_text()
        assert '"path": "/api/v1/events", "status": 200' in log and "Application shutdown complete." in log
    finally:
        db_client = make_client(mongo_uri)
        await db_client.drop_database(db_name)
        await close_client(db_client)
