"""Attacker's review, round 2 (issue 21): a receiver's odd `Retry-After` never breaks a delivery."""

from __future__ import annotations

from tests.conftest import bearer
from tests.integration.test_webhook_retries import _at, _attempts, _event, _run, _setup, receiver  # noqa: F401


async def test_a_retry_after_of_superscript_digits_is_ignored_not_a_crash(api_factory, receiver):  # noqa: F811
    # "²" is a digit to str.isdigit() but not to float(): the try must still be recorded and retried on schedule.
    api, admin, hook = await _setup(api_factory, receiver)
    api.container.webhooks.rand = lambda: 0.5
    receiver.statuses = [(503, {"retry-after": "²"}), (429, {"retry-after": "-30"}), 200]
    await _event(api)
    await _run(api)
    [first] = await _attempts(api, admin, hook)
    assert first["status_code"] == 503 and (_at(first["next_retry_at"]) - _at(first["at"])).total_seconds() == 5
    api.container.clock.advance(seconds=5)
    await _run(api)
    second = (await _attempts(api, admin, hook))[-1]
    assert second["status_code"] == 429 and (_at(second["next_retry_at"]) - _at(second["at"])).total_seconds() == 300
    assert len(receiver.requests) == 2


async def test_replay_since_at_the_edges_of_time_is_answered_not_a_500(api_factory, receiver):  # noqa: F811
    api, admin, hook = await _setup(api_factory, receiver)
    path = f"/admin/webhooks/{hook['id']}/replay"
    for since in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+05:30",
                  "9999-12-31T23:59:59-23:59"):
        r = await api.client.post(path, headers=bearer(admin), json={"since": since})
        assert r.status_code in (202, 422), (since, r.status_code, r.text)
        assert r.status_code == 202 or r.json()["error_code"] == "validation_error", r.text
    r = await api.client.post(path, headers=bearer(admin), json={"since": "2026-11-22T10:00:00"})  # naive
    assert r.status_code == 422 and r.json()["error_code"] == "validation_error"


async def test_replay_after_a_long_outage_queues_every_event_not_only_the_first_ten_thousand_tries(api_factory,
                                                                                                  receiver):  # noqa: F811
    from datetime import timedelta

    from bson import ObjectId
    api, admin, hook = await _setup(api_factory, receiver)
    c, start = api.container, api.container.clock.now()
    # 1,300 events, each tried 8 times over the outage (the 8th the last): 10,400 tries, interleaved in time.
    docs = [{"_id": ObjectId(), "endpoint_id": hook["id"], "event_id": f"{n:024x}", "event_type": "kyc.checks_completed",
             "delivery": "d", "attempt": k, "at": start + timedelta(hours=k, seconds=n), "url": hook["url"],
             "status_code": 500, "duration_ms": 1.0, "error": "HTTP 500",
             "next_retry_at": None if k == 8 else start + timedelta(hours=k + 1), "success": False,
             "expires_at": start + timedelta(days=30)} for k in range(1, 9) for n in range(1300)]
    await c.db["webhook_attempts"].insert_many(docs)
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/replay", headers=bearer(admin),
                              json={"since": start.isoformat()})
    assert r.status_code == 202 and r.json()["queued"] == 1300, r.text
