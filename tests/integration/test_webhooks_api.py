"""Webhooks end to end: admins register endpoints, a real receiver on 127.0.0.1 verifies each
delivery with the `standardwebhooks` library, failures are retried on the documented backoff,
secrets rotate with a grace period, attempts are listed and redelivered, nothing reaches a
private address, and an event outlives a restart between the state change and its delivery."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from standardwebhooks.webhooks import WebhookVerificationError

from app.document_keys import generate_key_spec
from app.domain.audit import ClientInfo
from app.domain.events import EVENT_TYPES
from app.domain.kyc import assess
from app.main import create_app
from app.repositories.database import close_client, make_client
from tests.conftest import Api, bearer, make_settings
from tests.integration.events_helpers import HANG, Receiver, open_case_with_documents, run_jobs, submitted_case
from tests.integration.lending_helpers import accept_kfs, apply_body, borrower, make_product


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def _register(api: Api, admin: dict[str, Any], url: str, events: list[str] | None = None) -> dict[str, Any]:
    r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
        "url": url, "events": events or ["kyc.checks_completed", "kyc.approved"], "description": "Lender"})
    assert r.status_code == 201, r.text
    return r.json()


async def _checks_completed(api: Api) -> tuple[dict[str, Any], Any]:
    """A customer's submitted case whose checks job then runs: `kyc.checks_completed` is published."""
    customer = await api.customer()
    case = await submitted_case(api.container, customer["user_id"])
    return customer, case


async def test_a_delivery_is_signed_and_retried_with_backoff_until_the_receiver_accepts(api_factory, receiver):
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    hook = await _register(api, admin, receiver.url)
    assert hook["secret"].startswith("whsec_") and "secret" not in (await api.client.get(
        f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
    receiver.statuses = [500, 503]
    customer, case = await _checks_completed(api)
    clock = api.container.clock
    api.container.webhooks.rand = lambda: 0.5

    await run_jobs(api.container)  # checks, fan-out, first try
    assert [r.answered for r in receiver.requests] == [500]
    first = receiver.requests[0]
    payload = receiver.verify(hook["secret"])
    assert payload["type"] == "kyc.checks_completed" and payload["timestamp"].endswith("Z")
    assert payload["data"]["kyc_id"] == case.id and payload["data"]["status"] == "SUBMITTED"
    assert first.method == "POST" and first.path == "/hooks/kycflow"
    assert first.headers["content-type"] == "application/json"
    event = await api.container.db["events"].find_one({"type": "kyc.checks_completed"})
    assert first.headers["webhook-id"] == str(event["_id"])

    # The schedule (jitter pinned to none; see test_webhook_retries.py): 5 s, then 5 min.
    clock.advance(seconds=4)
    assert await run_jobs(api.container) == 0 and len(receiver.requests) == 1
    clock.advance(seconds=1)
    await run_jobs(api.container)
    assert [r.answered for r in receiver.requests] == [500, 503]
    clock.advance(seconds=299)
    assert await run_jobs(api.container) == 0
    clock.advance(seconds=1)
    await run_jobs(api.container)
    assert [r.answered for r in receiver.requests] == [500, 503, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(event["_id"])}  # stable across retries
    assert receiver.verify(hook["secret"]) == payload

    r = await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 3 and page["page"] == 1
    assert [(a["attempt"], a["status_code"], a["success"]) for a in page["items"]] == [
        (3, 200, True), (2, 503, False), (1, 500, False)]
    assert page["items"][2]["error"] == "HTTP 500" and page["items"][0]["error"] is None
    assert page["items"][0]["next_retry_at"] is None and page["items"][2]["next_retry_at"] is not None
    assert all(a["event_id"] == str(event["_id"]) and a["duration_ms"] >= 0 for a in page["items"])
    assert hook["secret"] not in r.text
    stored = json.dumps(await api.container.db["webhook_endpoints"].find_one({}), default=str)
    assert hook["secret"] not in stored and hook["secret"][6:] not in stored  # encrypted at rest
    clock.advance(hours=30)
    assert await run_jobs(api.container) == 0 and len(receiver.requests) == 3  # delivered: nothing more


async def test_a_receiver_that_never_answers_is_a_timed_out_attempt_retried_later(api_factory, receiver):
    api = await api_factory(job_workers=0, webhook_timeout_seconds=0.3)
    admin = await api.staff("admin")
    hook = await _register(api, admin, receiver.url)
    receiver.statuses = [HANG]
    await _checks_completed(api)
    await run_jobs(api.container)
    r = await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None and attempt["error"] == "timeout after 0.3 s" and not attempt["success"]
    api.container.clock.advance(seconds=60)
    await run_jobs(api.container)
    assert [r.answered for r in receiver.requests] == [HANG, 200]


@pytest.mark.parametrize(("url", "reason"), [
    ("http://10.0.0.1/hook", "private address 10.0.0.1"),
    ("http://169.254.169.254/latest/meta-data", "link-local address 169.254.169.254"),
    ("http://localhost:8080/hook", "loopback address"),
    ("http://[::1]:8080/hook", "loopback address ::1"),
    ("http://[::ffff:10.1.2.3]/hook", "private address 10.1.2.3"),
    ("http://0.0.0.0/hook", "unspecified address 0.0.0.0"),
    ("http://224.0.0.1/hook", "multicast address 224.0.0.1"),
    ("ftp://example.com/hook", "must use http or https"),
    ("http://user:pass@127.0.0.1/hook", "must not carry credentials"),
    ("http://no-such-host.invalid/hook", "does not resolve"),
])
async def test_a_webhook_url_into_a_private_network_is_refused_with_the_field(api, url, reason):
    admin = await api.staff("admin")
    r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={"url": url, "events": ["kyc.approved"]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error_code"] == "invalid_webhook_url" and reason in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "url"]
    assert (await api.client.get("/admin/webhooks", headers=bearer(admin))).json()["total"] == 0


async def test_production_takes_https_only_and_no_loopback(api_factory):
    api = await api_factory(environment="production", document_encryption_key=generate_key_spec(),
                            document_fingerprint_key=generate_key_spec())
    admin = await api.staff("admin")
    for url, reason in (("http://93.184.215.14/hook", "must use https"),
                        ("https://127.0.0.1/hook", "loopback address 127.0.0.1"),
                        ("https://10.0.0.1/hook", "private address 10.0.0.1")):
        r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={"url": url, "events": ["kyc.approved"]})
        assert r.status_code == 422 and reason in r.json()["detail"], (url, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "url"]


async def test_a_name_that_resolves_to_a_private_address_at_delivery_time_is_not_called(api_factory, receiver):
    """DNS rebinding: public when registered, private when delivered; the try is refused and recorded."""
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    answers = {"hooks.example.com": ["93.184.215.14"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    api.container.webhooks.resolver = resolver
    hook = await _register(api, admin, "http://hooks.example.com/kycflow")
    answers["hooks.example.com"] = ["93.184.215.14", "127.0.0.1"]
    await _checks_completed(api)
    await run_jobs(api.container)
    r = await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None and "loopback address 127.0.0.1" in attempt["error"]
    assert receiver.requests == []


async def test_bad_bodies_and_other_roles_are_refused(api):
    admin, auditor, customer = await api.staff("admin"), await api.staff("auditor"), await api.customer()
    for who in (auditor, customer):
        r = await api.client.get("/admin/webhooks", headers=bearer(who))
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                              json={"url": "http://127.0.0.1:9/h", "events": ["kyc.exploded"]})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "events"]
    r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={"url": "http://127.0.0.1:9/h", "events": []})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "events"]
    r = await api.client.post("/admin/webhooks", headers=bearer(admin),
                              json={"url": "http://127.0.0.1:9/h", "events": ["kyc.approved"], "secret": "mine"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "secret"]
    for path in ("/admin/webhooks/nope", "/admin/webhooks/6741f0c2a1b2c3d4e5f60730/attempts"):
        r = await api.client.get(path, headers=bearer(admin))
        assert r.status_code == 404 and r.json()["error_code"] == "webhook_not_found"
    assert (await api.client.get("/admin/webhooks", headers=bearer(admin))).json()["total"] == 0


async def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends(api_factory, receiver):
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    hook = await _register(api, admin, receiver.url)
    old = hook["secret"]
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/rotate-secret", headers=bearer(admin))
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old and r.json()["previous_secret_expires_at"] is not None

    await _checks_completed(api)
    await run_jobs(api.container)
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 2
    assert receiver.verify(new)["type"] == receiver.verify(old)["type"] == "kyc.checks_completed"

    api.container.clock.advance(hours=24, seconds=1)  # the grace period is over: only the new secret signs
    await _checks_completed(api)
    await run_jobs(api.container)
    assert len(receiver.requests) == 2
    assert receiver.verify(new)["type"] == "kyc.checks_completed"
    with pytest.raises(WebhookVerificationError):
        receiver.verify(old)
    admin = await api.staff("admin")  # the first one's token expired meanwhile
    got = (await api.client.get(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))).json()
    assert got["previous_secret_expires_at"] is None


async def test_an_admin_redelivers_an_attempt_and_a_disabled_endpoint_gets_nothing_more(api_factory, receiver):
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    hook = await _register(api, admin, receiver.url)
    await _checks_completed(api)
    await run_jobs(api.container)
    [attempt] = (await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))).json()["items"]

    r = await api.client.post(f"/admin/webhooks/{hook['id']}/attempts/{attempt['id']}/redeliver", headers=bearer(admin))
    assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["event_id"] == attempt["event_id"]
    await run_jobs(api.container)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert receiver.verify(hook["secret"]) == receiver.verify(hook["secret"], 0)
    items = (await api.client.get(f"/admin/webhooks/{hook['id']}/attempts", headers=bearer(admin))).json()["items"]
    assert items[0]["delivery"].startswith("redeliver:") and items[0]["success"] and items[1]["delivery"] == "auto"
    assert await api.container.db["user_log"].count_documents({"action": "webhook_redelivered"}) == 1

    r = await api.client.post(f"/admin/webhooks/{hook['id']}/attempts/6741f0c2a1b2c3d4e5f60730/redeliver",
                              headers=bearer(admin))
    assert r.status_code == 404 and r.json()["error_code"] == "webhook_attempt_not_found"
    await api.container.db["events"].delete_one({"_id": ObjectId(attempt["event_id"])})  # past its retention
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/attempts/{attempt['id']}/redeliver", headers=bearer(admin))
    assert r.status_code == 404 and r.json()["error_code"] == "webhook_event_expired"

    receiver.statuses = [500]  # a failing try is queued for a retry, then the endpoint is disabled
    await _checks_completed(api)
    await run_jobs(api.container)
    assert len(receiver.requests) == 3
    r = await api.client.delete(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["disabled_at"]
    again = await api.client.delete(f"/admin/webhooks/{hook['id']}", headers=bearer(admin))
    assert again.status_code == 200 and again.json()["disabled_at"] == r.json()["disabled_at"]
    assert await api.container.db["user_log"].count_documents({"action": "webhook_disabled"}) == 1
    api.container.clock.advance(hours=1)
    await _checks_completed(api)
    await run_jobs(api.container)
    assert len(receiver.requests) == 3  # neither the retry nor the new event was sent
    admin = await api.staff("admin")  # the first one's token expired meanwhile
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/attempts/{attempt['id']}/redeliver", headers=bearer(admin))
    assert r.status_code == 409 and r.json()["error_code"] == "webhook_disabled"
    r = await api.client.post(f"/admin/webhooks/{hook['id']}/rotate-secret", headers=bearer(admin))
    assert r.status_code == 409 and r.json()["error_code"] == "webhook_disabled" and "secret" not in r.json()
    listed = (await api.client.get("/admin/webhooks", headers=bearer(admin))).json()
    assert listed["total"] == 1 and listed["items"][0]["enabled"] is False


async def test_only_subscribed_types_are_sent(api_factory, receiver):
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    await _register(api, admin, receiver.url, events=["kyc.approved"])
    await _checks_completed(api)
    await run_jobs(api.container)
    assert receiver.requests == []


@asynccontextmanager
async def _app(settings: Any) -> AsyncIterator[Api]:
    app = create_app(settings)
    ctx = app.router.lifespan_context(app)
    await ctx.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 5555)),
                               base_url="http://testserver/api/v1")
    try:
        yield Api(client=client, container=app.state.container, mailbox=None, settings=settings)  # type: ignore[arg-type]
    finally:
        await client.aclose()
        await ctx.__aexit__(None, None, None)


async def test_an_event_is_delivered_after_a_restart_between_the_change_and_the_delivery(
        mongo_uri, smtp, tmp_path: Path, api_factory, receiver):
    mailbox, port = smtp
    settings = make_settings(mongo_uri, tmp_path / "restart", port, job_workers=0, ml_preload=False)
    try:
        async with _app(settings) as first:
            first.mailbox = mailbox
            admin = await first.staff("admin")
            hook = await _register(first, admin, receiver.url)
            customer = await first.customer()
            case = await submitted_case(first.container, customer["user_id"], queue_checks=False)
            await first.container.kyc.cases.record_checks(case.id, [], _assessment(), first.container.clock.now())
            auditor = await first.staff("auditor")
            r = await first.client.put(f"/kyc/{case.id}/approve", headers=bearer(auditor), json={})
            assert r.status_code == 200, r.text
            # The service stops here: the case is approved, the event and its fan-out job are stored, nothing sent.
        assert receiver.requests == []

        async with _app(settings) as second:  # a new process on the same database
            await run_jobs(second.container)
        assert len(receiver.requests) == 1
        payload = receiver.verify(hook["secret"])
        assert payload["type"] == "kyc.approved"
        valid_until = payload["data"].pop("valid_until")  # periodic re-KYC: when the approval runs out
        assert valid_until.endswith("Z") and valid_until > payload["timestamp"]
        assert payload["data"] == {"kyc_id": case.id, "status": "APPROVED", "reason": None, "level": "standard"}
    finally:
        client = make_client(mongo_uri)
        await client.drop_database(settings.mongodb_db)
        await close_client(client)


def _assessment() -> Any:
    return assess([])


async def test_every_state_change_is_in_the_outbox_with_masked_numbers_only(api_factory):
    """Submission through the service writes `kyc.submitted` beside the case, numbers masked."""
    api = await api_factory(job_workers=0, kyc_require_selfie=False)
    customer = await api.customer()
    await open_case_with_documents(api.container, customer["user_id"])
    user = await api.container.users_repo.get(customer["user_id"])
    case = await api.container.kyc.submit(user, ClientInfo())
    event = await api.container.db["events"].find_one({"type": "kyc.submitted"})
    assert event["user_id"] == customer["user_id"] and event["audiences"] == [f"user:{customer['user_id']}", "staff"]
    assert event["data"] == {"kyc_id": case.id, "status": "SUBMITTED", "level": "standard", "documents": [
        {"type": "pan", "number_masked": "XXXXXX234F"}, {"type": "aadhaar", "number_masked": "XXXX XXXX 1234"}]}
    assert await api.container.db["jobs"].count_documents({"kind": "webhook_fanout",
                                                          "payload.event_id": str(event["_id"])}) == 1
    assert event["created_at"] - api.container.clock.now() < timedelta(seconds=5)
    assert event["expires_at"] - event["created_at"] == timedelta(days=30)  # EVENTS_RETENTION_DAYS, then dropped


async def test_a_loan_s_life_reaches_the_receiver_in_order_with_exact_amounts(api_factory, receiver):
    api = await api_factory(job_workers=0)
    admin = await api.staff("admin")
    loan_events = [t for t in EVENT_TYPES if t.startswith("loan.")]
    hook = await _register(api, admin, receiver.url, events=loan_events)
    product = await make_product(api, min_tenure_months=1)
    who = await borrower(api, income=200000.0)
    r = await api.client.post("/loans/apply", headers=who["headers"],
                              json=apply_body(product, amount=60000, tenure_months=1))
    assert r.status_code == 201, r.text
    loan_id = r.json()["loan_id"]
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=bearer(admin))).status_code == 200
    await accept_kfs(api, loan_id, who["headers"])
    assert (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=bearer(admin))).status_code == 200
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 60600})
    assert r.status_code == 201, r.text
    await run_jobs(api.container)

    payloads = [receiver.verify(hook["secret"], n) for n in range(len(receiver.requests))]
    assert [p["type"] for p in payloads] == ["loan.applied", "loan.approved", "loan.kfs_accepted", "loan.disbursed",
                                             "loan.repayment_received", "loan.closed"]
    assert all(p["data"]["loan_id"] == loan_id and p["data"]["amount"] == "60000.00" for p in payloads)
    assert payloads[2]["data"]["kfs_number"] == f"KFS-{loan_id}-1"
    assert payloads[3]["data"]["net_disbursed"] == "58800.00"  # less the 2 % fee, as an exact string
    assert payloads[4]["data"]["paid"] == "60600.00" and payloads[4]["data"]["outstanding"] == "0.00"
    assert payloads[5]["data"]["status"] == "CLOSED" and payloads[5]["data"]["closure"] == "repaid"
    outbox = await api.container.db["events"].find({"type": {"$regex": "^loan"}}).to_list(None)
    assert {e["user_id"] for e in outbox} == {who["user_id"]} and all(e["audiences"] == [f"user:{who['user_id']}"]
                                                                        for e in outbox)


async def test_a_fan_out_whose_event_is_gone_ends_without_sending(api_factory):
    """An event past its retention: the fan-out has nothing to send and is done at once."""
    api = await api_factory(job_workers=0)
    job = await api.container.jobs.enqueue("webhook_fanout", "webhook_fanout:x", {"event_id": "6741f0c2a1b2c3d4e5f60799"})
    assert await api.container.jobs.run_once()
    assert (await api.container.jobs.repo.get(job.id)).status.value == "done"
