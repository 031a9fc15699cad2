"""Two API instances (`kycflow serve`, JOB_WORKERS=0) and two `kycflow worker`s on one database, as
behind a load balancer: limits are counted across the instances, an event caused through one reaches
a stream held on the other, and each job runs once whichever worker claims it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from contextlib import ExitStack

import httpx
from bson import ObjectId

from app.repositories.database import close_client, make_client
from tests.conftest import PASSWORD
from tests.e2e._cluster_helpers import (
    cluster_env,
    headers,
    login,
    run_cli,
    sign_up,
    start_api,
    start_worker,
    submit_kyc,
    until,
)
from tests.e2e.test_live_events import Stream
from tests.integration.events_helpers import Receiver


async def test_two_instances_and_two_workers_share_limits_events_and_jobs(mongo_uri, tmp_path):
    db_name = f"two_{ObjectId()}"
    data_dir = tmp_path / "var"
    # The default route group: 12 requests a day per caller, counted in the shared database.
    env = cluster_env(mongo_uri, db_name, data_dir, LOGIN_MAX_FAILURES="3", RATE_LIMITS='{"default": "12/day"}')
    run_cli(env, "create-user", "--email", "admin@example.com", "--password", PASSWORD, "--name", "Admin",
            "--role", "admin")
    receiver = await Receiver().start()
    db_client = make_client(mongo_uri)
    db = db_client[db_name]
    try:
        with ExitStack() as stack:
            a_url, _ = stack.enter_context(start_api(tmp_path / "a", env))
            b_url, _ = stack.enter_context(start_api(tmp_path / "b", env))
            workers = [stack.enter_context(start_worker(tmp_path / f"w{n}", env)) for n in (1, 2)]
            a = httpx.AsyncClient(base_url=f"{a_url}/api/v1", timeout=10)
            b = httpx.AsyncClient(base_url=f"{b_url}/api/v1", timeout=10)
            try:
                await _shared_limits(a, b, data_dir / "outbox")
                await _events_and_jobs(a, b, data_dir / "outbox", receiver, db)
            finally:
                await a.aclose()
                await b.aclose()
            assert all(w.poll() is None for w in workers)
    finally:
        await receiver.stop()
        await db_client.drop_database(db_name)
        await close_client(db_client)


async def _shared_limits(a: httpx.AsyncClient, b: httpx.AsyncClient, outbox) -> None:
    who = await sign_up(a, b, outbox, f"limits-{uuid.uuid4().hex[:6]}@example.com")
    # Six requests through each instance fill the day's twelve; the next is refused by both.
    for n in range(12):
        r = await (a if n % 2 else b).get("/users/me", headers=headers(who))
        assert r.status_code == 200, (n, r.text)
    for client in (b, a):
        r = await client.get("/users/me", headers=headers(who))
        assert r.status_code == 429 and r.json()["error_code"] == "rate_limited", r.text
        assert r.headers["x-ratelimit-remaining"] == "0"

    # Login failures: two through A and one through B reach LOGIN_MAX_FAILURES=3 together.
    for client in (a, a, b):
        r = await client.post("/auth/login", json={"identifier": who["email"], "password": "wrong-" + PASSWORD})
        assert r.status_code == 401, r.text
    r = await b.post("/auth/login", json={"identifier": who["email"], "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error_code"] == "account_locked", r.text


async def _events_and_jobs(a: httpx.AsyncClient, b: httpx.AsyncClient, outbox, receiver: Receiver, db) -> None:
    admin = await login(a, "admin@example.com")
    r = await b.post("/admin/webhooks", headers=headers(admin), json={
        "url": receiver.url, "events": ["kyc.submitted", "kyc.checks_completed"]})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    customer = await sign_up(b, a, outbox, f"events-{uuid.uuid4().hex[:6]}@example.com")
    stream = Stream(b, customer["access_token"]).start()  # held on instance B
    try:
        await until(lambda: stream.status == 200, what="the stream on B")
        kyc_id = await submit_kyc(a, customer)  # caused through instance A
        await until(lambda: stream.types() == ["kyc.submitted", "kyc.checks_completed"], 30,
                    f"both events on B's stream, got {stream.types()}")
        assert {e["data"]["kyc_id"] for e in stream.events} == {kyc_id}
    finally:
        await stream.close()

    # Each event reached the receiver once, whichever worker delivered it.
    await until(lambda: len(receiver.requests) >= 2, 30, "the webhook deliveries")
    await asyncio.sleep(1.0)  # a second delivery by the other worker would land by now
    assert len(receiver.requests) == 2
    sent = [receiver.verify(secret, n) for n in range(2)]
    assert sorted(s["type"] for s in sent) == ["kyc.checks_completed", "kyc.submitted"]
    assert len({req.headers["webhook-id"] for req in receiver.requests}) == 2
    jobs = await db["jobs"].find({}).to_list()
    assert Counter(j["kind"] for j in jobs) == {"kyc_checks": 1, "webhook_fanout": 2, "webhook_delivery": 2}, jobs
    assert {(j["status"], j["attempts"]) for j in jobs} == {("done", 1)}, jobs
    attempts = await db["webhook_attempts"].count_documents({})
    assert attempts == 2
