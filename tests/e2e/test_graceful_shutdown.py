"""SIGTERM to `kycflow serve`: the requests in flight finish (within SHUTDOWN_GRACE_SECONDS), the job
workers stop claiming and give their leases back at once, and each live stream ends with a final
event whose id a reconnect sends as Last-Event-ID to miss nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest
from bson import ObjectId

from app.repositories.database import close_client, make_client
from tests.conftest import PASSWORD
from tests.e2e._cluster_helpers import (
    CARD,
    cluster_env,
    headers,
    login,
    run_cli,
    sign_up,
    start_api,
    submit_kyc,
    until,
)
from tests.e2e.test_live_events import Stream, served  # noqa: F401 - served: a fixture
from tests.integration.events_helpers import HANG, Receiver


@pytest.fixture
async def db(mongo_uri):
    client = make_client(mongo_uri)
    name = f"stop_{ObjectId()}"
    yield client[name]
    await client.drop_database(name)
    await close_client(client)


def _slow_upload(client: httpx.AsyncClient, tokens: dict) -> asyncio.Task[httpx.Response]:
    """A voter ID upload: the fake OCR holds it (KYCFLOW_TEST_FAKE_OCR_SLOW) so it is in flight."""
    return asyncio.get_running_loop().create_task(client.post(
        "/kyc/documents", headers=headers(tokens), data={"document_type": "voter_id"},
        files={"file": ("card.jpg", CARD, "image/jpeg")}))


async def test_sigterm_lets_requests_finish_gives_leases_back_and_ends_streams_where_they_resume(
        mongo_uri, db, tmp_path):
    marker = tmp_path / "ocr-started"
    env = cluster_env(mongo_uri, db.name, tmp_path / "var", JOB_WORKERS="1", SHUTDOWN_GRACE_SECONDS="20",
                      KYCFLOW_TEST_FAKE_OCR_SLOW=f"voter_id:3:{marker}", WEBHOOK_TIMEOUT_SECONDS="60",
                      EVENTS_HEARTBEAT_SECONDS="30")
    run_cli(env, "create-user", "--email", "admin@example.com", "--password", PASSWORD, "--name", "Admin",
            "--role", "admin")
    receiver = await Receiver(statuses=[HANG]).start()  # the first delivery hangs: its job is running
    outbox = tmp_path / "var" / "outbox"
    try:
        with start_api(tmp_path / "first", env) as (base, proc):
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
                admin = await login(api, "admin@example.com")
                r = await api.post("/admin/webhooks", headers=headers(admin),
                                   json={"url": receiver.url, "events": ["kyc.submitted"]})
                assert r.status_code == 201, r.text
                viewer = await sign_up(api, api, outbox, f"viewer-{uuid.uuid4().hex[:6]}@example.com")
                uploader = await sign_up(api, api, outbox, f"slow-{uuid.uuid4().hex[:6]}@example.com")
                stream = Stream(api, viewer["access_token"]).start()
                await until(lambda: stream.status == 200, what="the stream")
                kyc_id = await submit_kyc(api, viewer)
                await until(lambda: stream.types() == ["kyc.submitted", "kyc.checks_completed"], 30, "the events")
                await until(lambda: receiver.requests, 30, "the hanging delivery")
                delivery = await db["jobs"].find_one({"kind": "webhook_delivery"})
                assert delivery["status"] == "running" and delivery["attempts"] == 1

                upload = _slow_upload(api, uploader)
                await until(marker.exists, 10, "the upload to be in flight")
                proc.send_signal(signal.SIGTERM)

                # At once, while the upload still holds the server: the stream ends on a resume point ...
                await asyncio.wait_for(stream.task, 2)
                end = stream.events[-1]
                assert end["type"] == "stream.end" and end["data"] == {"reason": "shutdown"}, stream.events
                assert end["id"] == stream.events[-2]["id"]  # the last event it delivered
                # ... and the running job is queued again, its attempt not counted, nobody's lease on it.
                released = await until(lambda: db["jobs"].find_one({"_id": delivery["_id"], "status": "queued"}), 2,
                                       "the lease to be given back")
                assert released["lease_owner"] is None and released["attempts"] == 0
                assert proc.poll() is None  # still serving the upload in flight
                r = await upload
                assert r.status_code == 201, r.text
                assert await asyncio.to_thread(proc.wait, 20) == -signal.SIGTERM
        log = (tmp_path / "first" / "server.log").read_text()
        assert "job workers stopped" in log and "Traceback" not in log, log[-3000:]
        case = await db["kyc_doc"].find_one({"user_id": uploader["user_id"]})
        assert [d["type"] for d in case["documents"]] == ["voter_id"]  # the upload in flight was kept

        with start_api(tmp_path / "second", env) as (base, _):
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
                viewer = await login(api, viewer["email"])
                admin = await login(api, "admin@example.com")
                r = await api.put(f"/kyc/{kyc_id}/approve", headers=headers(admin), json={})
                assert r.status_code == 200, r.text
                again = Stream(api, viewer["access_token"], last_event_id=end["id"]).start()
                await until(lambda: again.events, 10, "the resumed stream")
                await asyncio.sleep(0.5)
                assert again.types() == ["kyc.approved"]  # nothing missed, nothing twice
                await again.close()
                # The delivery given back runs again, under the same webhook-id.
                await until(lambda: len(receiver.requests) == 2, 30, "the delivery's second try")
                assert receiver.requests[1].headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]
    finally:
        await receiver.stop()


async def test_a_request_longer_than_the_grace_period_is_cut_and_stores_nothing(mongo_uri, db, tmp_path):
    marker = tmp_path / "ocr-started"
    env = cluster_env(mongo_uri, db.name, tmp_path / "var", SHUTDOWN_GRACE_SECONDS="1",
                      KYCFLOW_TEST_FAKE_OCR_SLOW=f"voter_id:8:{marker}")
    with start_api(tmp_path, env) as (base, proc):
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
            who = await sign_up(api, api, Path(env["DATA_DIR"]) / "outbox", "cut@example.com")
            upload = _slow_upload(api, who)
            await until(marker.exists, 10, "the upload to be in flight")
            started = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGTERM)
            r = await upload  # cut at the end of the grace period, in the envelope
            assert r.status_code == 503 and r.json()["error_code"] == "shutting_down", r.text
            assert r.headers["retry-after"] == "1"
            assert asyncio.get_running_loop().time() - started < 5
            await asyncio.to_thread(proc.wait, 20)
    assert "timeout graceful shutdown exceeded" in (tmp_path / "server.log").read_text()
    assert await db["kyc_doc"].count_documents({"documents.type": "voter_id"}) == 0


async def test_a_stream_whose_token_expires_ends_on_a_resume_point(served):  # noqa: F811 - the fixture
    """The same last event when the access token runs out: the client reconnects with a fresh token and
    that id, and receives what happened in between."""
    from app.domain.audit import ClientInfo
    from tests.e2e.test_live_events import _until as wait
    from tests.integration.events_helpers import open_case_with_documents
    from tests.integration.lending_helpers import borrower, relogin

    api = served
    who = await borrower(api, kyc=False)
    stream = Stream(api.client, who["access_token"]).start()
    await wait(lambda: api.container.events_hub.viewers == 1, what="the viewer")
    api.container.clock.advance(seconds=api.settings.access_token_ttl_seconds + 1)
    await asyncio.wait_for(stream.task, 10)
    assert [(e["type"], e["data"]) for e in stream.events] == [("stream.end", {"reason": "token_expired"})]
    c = api.container
    await open_case_with_documents(c, who["user_id"])
    await c.kyc.submit(await c.users_repo.get(who["user_id"]), ClientInfo())  # while it was away
    again = Stream(api.client, (await relogin(api, who))["access_token"], last_event_id=stream.events[0]["id"]).start()
    await wait(lambda: again.events, what="the replay")
    assert again.types() == ["kyc.submitted"]
    await again.close()
