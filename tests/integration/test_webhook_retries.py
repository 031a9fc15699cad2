"""Webhook deliveries as Svix makes them: the schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with
bounded jitter, `Retry-After` on 429 and 503, `410 Gone`, the endpoint disabled after failing for days
(admins told by an event and a mail), a per-endpoint limit on tries at once, and replay. The clock
is moved, never waited for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from app.domain.webhooks import DEFAULT_RETRY_SCHEDULE, parse_retry_after, retry_delay
from tests.conftest import Api, bearer
from tests.integration.events_helpers import HANG, Received, Receiver, submitted_case


class HeaderReceiver(Receiver):
    """A Receiver whose scripted answers may carry headers: `(status, {"retry-after": "120"})`."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                answer: Any = self.statuses.pop(0) if self.statuses else 200
                status, extra = answer if isinstance(answer, tuple) else (answer, {})
                self.requests.append(Received(method, path, headers, body, time.monotonic(), status))
                if status == HANG:
                    await asyncio.sleep(3600)
                more = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(f"HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\n{more}\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[HeaderReceiver]:
    r = await HeaderReceiver().start()
    yield r
    await r.stop()


async def _setup(api_factory: Any, receiver: Receiver, **overrides: Any) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    api = await api_factory(job_workers=0, access_token_ttl_seconds=10 * 86400, **overrides)  # the clock moves days
    admin = await api.staff("admin")
    r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
        "url": receiver.url, "events": ["kyc.checks_completed"]})
    assert r.status_code == 201, r.text
    return api, admin, r.json()


async def _event(api: Api) -> None:
    """One `kyc.checks_completed` event (its checks job runs with the next `_run`)."""
    customer = await api.customer()
    await submitted_case(api.container, customer["user_id"])


async def _run(api: Api) -> int:
    ran = 0
    while ran < 100 and await api.container.jobs.run_once():
        ran += 1
    return ran


async def _attempts(api: Api, admin: dict[str, Any], hook: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.client.get(f"/admin/webhooks/{hook['id']}/attempts?page_size=100", headers=bearer(admin))
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))  # oldest first


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_failed_tries_follow_svix_s_schedule_and_the_attempts_show_the_next_one(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver)
    api.container.webhooks.rand = lambda: 0.5  # a jitter factor of exactly 1
    receiver.statuses = [500] * 20
    await _event(api)
    await _run(api)
    assert len(receiver.requests) == 1
    waits = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for n, wait in enumerate(waits, start=1):
        last = (await _attempts(api, admin, hook))[-1]
        assert (_at(last["next_retry_at"]) - _at(last["at"])).total_seconds() == wait, (n, last)
        api.container.clock.advance(seconds=wait - 1)
        await _run(api)
        assert len(receiver.requests) == n, f"try {n + 1} came before its time"
        api.container.clock.advance(seconds=1)
        await _run(api)
        assert len(receiver.requests) == n + 1
    attempts = await _attempts(api, admin, hook)
    assert [a["attempt"] for a in attempts] == list(range(1, 9)) and attempts[-1]["next_retry_at"] is None
    api.container.clock.advance(days=3)
    await _run(api)
    assert len(receiver.requests) == 8  # the 8th try was the last
    assert {r.headers["webhook-id"] for r in receiver.requests} == {attempts[0]["event_id"]}


async def test_jitter_stays_within_a_fifth_of_each_wait(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver)
    receiver.statuses = [500, 500]
    api.container.webhooks.rand = lambda: 0.0  # the shortest wait: 0.8 x 5 s
    await _event(api)
    await _run(api)
    first = (await _attempts(api, admin, hook))[-1]
    assert (_at(first["next_retry_at"]) - _at(first["at"])).total_seconds() == 4.0
    api.container.webhooks.rand = lambda: 1.0  # the longest: 1.2 x 5 min
    api.container.clock.advance(seconds=4)
    await _run(api)
    second = (await _attempts(api, admin, hook))[-1]
    assert second["attempt"] == 2 and (_at(second["next_retry_at"]) - _at(second["at"])).total_seconds() == 360.0
    for rand in (0.0, 0.3, 0.999999):
        for n, wait in enumerate(DEFAULT_RETRY_SCHEDULE, start=1):
            got = retry_delay(DEFAULT_RETRY_SCHEDULE, n, jitter=0.2, rand=rand)
            assert got is not None and 0.8 * wait <= got <= 1.2 * wait
    assert retry_delay(DEFAULT_RETRY_SCHEDULE, 8, jitter=0.2, rand=0.5) is None


async def test_retry_after_on_429_and_503_delays_the_next_try_up_to_its_cap(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver, webhook_retry_after_cap_seconds=7200)
    api.container.webhooks.rand = lambda: 0.5
    later = format_datetime(api.container.clock.now() + timedelta(minutes=10), usegmt=True)
    receiver.statuses = [(503, {"retry-after": "120"}), (429, {"retry-after": later}),
                         (503, {"retry-after": "999999"}), (500, {"retry-after": "9000"})]
    await _event(api)
    await _run(api)
    [a1] = await _attempts(api, admin, hook)
    assert a1["status_code"] == 503 and (_at(a1["next_retry_at"]) - _at(a1["at"])).total_seconds() == 120
    api.container.clock.advance(seconds=119)
    await _run(api)
    assert len(receiver.requests) == 1  # the schedule said 5 s; the receiver asked for 2 minutes
    api.container.clock.advance(seconds=1)
    await _run(api)
    a2 = (await _attempts(api, admin, hook))[-1]
    assert a2["status_code"] == 429
    assert 470 <= (_at(a2["next_retry_at"]) - _at(a2["at"])).total_seconds() <= 481  # the HTTP date, ~8 min on
    api.container.clock.advance(seconds=481)
    await _run(api)
    a3 = (await _attempts(api, admin, hook))[-1]
    assert a3["attempt"] == 3 and (_at(a3["next_retry_at"]) - _at(a3["at"])).total_seconds() == 7200  # capped
    api.container.clock.advance(seconds=7200)
    await _run(api)
    a4 = (await _attempts(api, admin, hook))[-1]
    assert a4["status_code"] == 500 and (_at(a4["next_retry_at"]) - _at(a4["at"])).total_seconds() == 7200  # schedule
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 10:01:30 GMT", now) == 90
    assert parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None and parse_retry_after("-5", now) is None


async def _admin_mails(api: Api, admin: dict[str, Any]) -> list[Any]:
    return [m for m in api.mailbox.for_address(admin["email"]) if m["Subject"] == "A webhook endpoint was disabled"]


async def test_410_gone_disables_the_endpoint_at_once_and_tells_the_admins(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver)
    receiver.statuses = [410]
    await _event(api)
    await _run(api)
    [attempt] = await _attempts(api, admin, hook)
    assert attempt["status_code"] == 410 and attempt["next_retry_at"] is None
    got = (await api.client.get(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
    assert got["enabled"] is False and got["disabled_reason"] == "gone" and got["disabled_at"]
    [mail] = await _admin_mails(api, admin)
    assert hook["url"] in mail.get_body(preferencelist=("plain",)).get_content()
    [event] = await api.container.db["events"].find({"type": "webhook.endpoint_disabled"}).to_list(None)
    assert event["data"] == {"webhook_id": hook["id"], "reason": "gone"}
    assert event["audiences"] == ["admins"]  # live (SSE, Socket.IO) to admins only
    auditor = await api.staff("auditor")
    audiences = api.container.events.audiences_of
    assert "admins" in audiences(await api.container.users_repo.get(admin["user_id"]))
    assert "admins" not in audiences(await api.container.users_repo.get(auditor["user_id"]))
    assert await api.container.db["user_log"].count_documents({"action": "webhook_disabled", "details.reason": "gone"}) == 1
    api.container.clock.advance(days=1)
    await _event(api)
    await _run(api)
    assert len(receiver.requests) == 1  # nothing more is sent


async def test_an_endpoint_failing_for_five_days_is_disabled_and_a_success_resets_the_count(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver)
    api.container.webhooks.rand = lambda: 0.5
    clock = api.container.clock
    receiver.statuses = [500, 200]  # fails, then its retry succeeds: the streak ends
    await _event(api)
    await _run(api)
    clock.advance(seconds=5)
    await _run(api)
    assert (await api.container.db["webhook_endpoints"].find_one({}))["failing_since"] is None
    receiver.statuses = [500] * 100
    for advance in ({"days": 1}, {"days": 1}, {"days": 1}, {"days": 1}, {"hours": 23}):  # every try fails
        await _event(api)
        await _run(api)
        clock.advance(**advance)
        await _run(api)
        got = (await api.client.get(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
        assert got["enabled"] is True and got["failing_since"] is not None
    clock.advance(hours=1)
    await _event(api)
    await _run(api)  # 5 days after the first failure of the streak
    got = (await api.client.get(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
    assert got["enabled"] is False and got["disabled_reason"] == "failing"
    assert len(await _admin_mails(api, admin)) == 1
    assert await api.container.db["events"].count_documents({"type": "webhook.endpoint_disabled"}) == 1
    sent = len(receiver.requests)
    clock.advance(days=2)
    await _run(api)
    assert len(receiver.requests) == sent  # the queued retries end unsent


async def test_one_slow_endpoint_cannot_hold_every_delivery_worker(api_factory, receiver):
    fast = await HeaderReceiver().start()
    try:
        api = await api_factory(job_workers=1, webhook_delivery_workers=3, webhook_endpoint_concurrency=1,
                                webhook_timeout_seconds=2.0)
        admin = await api.staff("admin")
        for url in (receiver.url, fast.url):
            r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                                      json={"url": url, "events": ["kyc.checks_completed"]})
            assert r.status_code == 201
        receiver.statuses = [HANG] * 10
        for _ in range(3):
            await _event(api)
        for _ in range(40):  # the fast receiver gets all three while the slow one holds one try
            if len(fast.requests) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(fast.requests) == 3 and len(receiver.requests) == 1
        busy = await api.container.db["jobs"].count_documents({"kind": "webhook_delivery",
                                                               "last_error": {"$regex": "under way"}})
        assert busy >= 1  # the other tries to the slow one were put back, not made
    finally:
        await fast.stop()


async def test_an_admin_replays_the_failed_deliveries_since_a_time_once_per_click(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver)
    clock = api.container.clock
    start = clock.now()
    receiver.statuses = [410]
    await _event(api)
    await _event(api)
    await _run(api)  # the first try answers 410: disabled; the second event is not sent
    assert len(receiver.requests) == 1
    url = f"/admin/webhooks/{hook['id']}/replay"
    since = {"since": start.isoformat()}
    r = await api.client.post(url, headers=bearer(admin), json=since)
    assert r.status_code == 409 and r.json()["error_code"] == "webhook_disabled"
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/enable", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["disabled_reason"] is None
    first = await api.client.post(url, headers=bearer(admin), json=since)
    again = await api.client.post(url, headers=bearer(admin), json=since)  # a double click
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["queued"] == again.json()["queued"] == 1  # only the event that was tried
    await _run(api)
    assert len(receiver.requests) == 2 and receiver.requests[1].headers["webhook-id"] == receiver.requests[0].headers[
        "webhook-id"]
    assert (await _attempts(api, admin, hook))[-1]["delivery"].startswith("replay:")
    r = await api.client.post(url, headers=bearer(admin), json=since)
    assert r.json()["queued"] == 0  # delivered now: nothing to replay
    assert await api.container.db["user_log"].count_documents({"action": "webhook_replayed"}) == 3
    for body in ({"since": "2026-11-22T10:00:00"}, {"since": "yesterday"}, {}, {"since": start.isoformat(), "x": 1}):
        r = await api.client.post(url, headers=bearer(admin), json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][0] == "body", (body, r.text)
    auditor = await api.staff("auditor")
    r = await api.client.post(url, headers=bearer(auditor), json=since)
    assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    r = await api.client.post("/admin/webhooks/6741f0c2a1b2c3d4e5f60730/replay", headers=bearer(admin), json=since)
    assert r.status_code == 404 and r.json()["error_code"] == "webhook_not_found"


async def test_replay_after_an_auto_disable_sends_every_event_whose_retries_were_dropped(api_factory, receiver):
    api, admin, hook = await _setup(api_factory, receiver, webhook_disable_after_days=0.01)  # 14.4 minutes
    api.container.webhooks.rand = lambda: 0.5
    clock, start = api.container.clock, api.container.clock.now()
    receiver.statuses = [500] * 7
    await _event(api)
    await _event(api)
    await _run(api)  # both first tries fail
    for wait in (5, 300, 1800):  # the fourth round comes 35 minutes into the streak: disabled
        clock.advance(seconds=wait)
        await _run(api)
    assert len(receiver.requests) == 7  # 3 + 3, then the try that disabled it; the other retry was dropped
    got = (await api.client.get(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
    assert got["enabled"] is False and got["disabled_reason"] == "failing"
    latest = {a["event_id"]: a for a in await _attempts(api, admin, hook)}
    assert len(latest) == 2 and all(a["next_retry_at"] is None for a in latest.values())  # no try is coming
    assert (await api.client.post(f"/admin/webhooks/{hook['id']}/enable", headers=bearer(admin))).status_code == 200
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/replay", headers=bearer(admin),
                              json={"since": start.isoformat()})
    assert r.status_code == 202 and r.json()["queued"] == 2, r.text
    await _run(api)
    assert [q.answered for q in receiver.requests[7:]] == [200, 200]
    assert {q.headers["webhook-id"] for q in receiver.requests[7:]} == set(latest)


async def test_an_auto_disable_cut_before_its_notice_leaves_the_endpoint_enabled_and_the_next_one_tells(
        api_factory, receiver, monkeypatch):
    """The disable, its event, the admins' mails and the audit entry are one transaction: a failure before the
    mails are queued leaves nothing half done (an endpoint silently off), and the next try does it all."""
    api, admin, hook = await _setup(api_factory, receiver)
    service = api.container.webhooks
    endpoint = await service.endpoints.get(hook["id"])
    real = service.notices.queue

    async def cut(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(service.notices, "queue", cut)
    with pytest.raises(RuntimeError):
        await service._auto_disable(endpoint, "gone", "410 Gone")
    assert (await service.endpoints.get(hook["id"])).enabled
    assert await api.container.db["events"].count_documents({"type": "webhook.endpoint_disabled"}) == 0
    assert await api.container.db["user_log"].count_documents({"action": "webhook_disabled"}) == 0

    monkeypatch.setattr(service.notices, "queue", real)
    await service._auto_disable(endpoint, "gone", "410 Gone")
    await service._auto_disable(endpoint, "gone", "410 Gone")  # a second caller: already done, nothing more
    assert not (await service.endpoints.get(hook["id"])).enabled
    assert await api.container.db["events"].count_documents({"type": "webhook.endpoint_disabled"}) == 1
    await _run(api)
    assert len(await _admin_mails(api, admin)) == 1
