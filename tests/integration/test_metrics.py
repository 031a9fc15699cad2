"""`/metrics` in the Prometheus text format: refused without METRICS_TOKEN (404) or without the
bearer token (401); requests by route template, method and status; the database's cases, loans and
jobs by status read at scrape time; job attempts and failures, webhook deliveries, model tasks,
live streams and rate-limit refusals counted where they happen; a METRICS_PORT listener of its own.
Counters are per process and shared by every app a test builds: tests compare before and after."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.domain.webhooks import WEBHOOK_DELIVERY_JOB
from tests.conftest import Api, bearer, free_port
from tests.integration.events_helpers import Receiver, run_jobs, submitted_case

TOKEN = "metrics-token-" + "m" * 24


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await api.client.get("http://testserver/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return parse(r.text)


def value(figures: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_not_served_on_the_api_port_without_a_token_setting(api):
    r = await api.client.get("http://testserver/metrics")
    assert r.status_code == 404 and r.json()["error_code"] == "not_found", r.text
    assert "kycflow_" not in r.text


async def test_metrics_need_the_bearer_token(api_factory):
    api = await api_factory(metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = await api.client.get("http://testserver/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error_code"] == "not_authenticated", (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer" and "kycflow_" not in r.text
    assert "# TYPE kycflow_http_requests_total counter" in (await api.client.get(
        "http://testserver/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text


async def test_requests_are_counted_by_route_template_method_and_status(api_factory):
    api = await api_factory(metrics_token=TOKEN)
    tokens = await api.customer()
    before = await scrape(api)
    for _ in range(2):
        assert (await api.client.get("/users/me", headers=bearer(tokens))).status_code == 200
    assert (await api.client.get("/kyc/0123456789abcdef01234567", headers=bearer(tokens))).status_code in (403, 404)
    assert (await api.client.get("/no/such/route/12345")).status_code == 404
    after = await scrape(api)
    me = {"route": "/api/v1/users/me", "method": "GET"}
    assert value(after, "kycflow_http_requests_total", **me, status="200") - \
        value(before, "kycflow_http_requests_total", **me, status="200") == 2
    assert value(after, "kycflow_http_request_duration_seconds_count", **me) - \
        value(before, "kycflow_http_request_duration_seconds_count", **me) == 2
    # The template, never the id in the path; a path no route matched is one series, whatever it was.
    assert any(name == "kycflow_http_requests_total" and ("route", "/api/v1/kyc/{kyc_id}") in labels
               for name, labels in after)
    assert not any("0123456789abcdef01234567" in v or "12345" in v for _, labels in after for _, v in labels)
    assert value(after, "kycflow_http_requests_total", route="unmatched", method="GET", status="404") > \
        value(before, "kycflow_http_requests_total", route="unmatched", method="GET", status="404")


async def test_cases_loans_and_the_job_backlog_are_read_from_the_database_when_scraped(api_factory):
    api = await api_factory(metrics_token=TOKEN, job_workers=0)
    figures = await scrape(api)
    for status in ("OPEN", "SUBMITTED", "APPROVED", "REJECTED"):
        assert value(figures, "kycflow_kyc_cases", status=status) == 0
    assert value(figures, "kycflow_loans", status="APPLIED") == 0
    assert ("kycflow_loans", frozenset({("status", "CLOSED")})) in figures  # every status, 0 included

    customer = await api.customer()
    await submitted_case(api.container, customer["user_id"])  # and its checks job, queued
    await api.container.db["loans"].insert_many([{"status": "APPLIED"}, {"status": "APPLIED"},
                                                 {"status": "DISBURSED"}])
    figures = await scrape(api)
    assert value(figures, "kycflow_kyc_cases", status="SUBMITTED") == 1
    assert value(figures, "kycflow_kyc_cases", status="OPEN") == 0
    assert value(figures, "kycflow_loans", status="APPLIED") == 2
    assert value(figures, "kycflow_loans", status="DISBURSED") == 1
    assert value(figures, "kycflow_jobs", status="queued", kind="kyc_checks") == 1
    assert value(figures, "kycflow_jobs", status="failed", kind="kyc_checks") == 0

    await run_jobs(api.container)
    figures = await scrape(api)
    assert value(figures, "kycflow_jobs", status="queued", kind="kyc_checks") == 0


async def test_job_attempts_failures_and_webhook_deliveries_are_counted(api_factory):
    api = await api_factory(metrics_token=TOKEN, job_workers=0)
    receiver = await Receiver(statuses=[500]).start()
    try:
        admin = await api.staff("admin")
        r = await api.client.post("/admin/webhooks", headers=bearer(admin), json={
            "url": receiver.url, "events": ["kyc.checks_completed"], "description": "Lender"})
        assert r.status_code == 201, r.text
        customer = await api.customer()
        await submitted_case(api.container, customer["user_id"])
        before = await scrape(api)
        await run_jobs(api.container)  # checks, fan-out, a first try answered 500
        api.container.clock.advance(seconds=60)
        await run_jobs(api.container)  # the retry, answered 200
        after = await scrape(api)
    finally:
        await receiver.stop()
    assert [x.answered for x in receiver.requests] == [500, 200]

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kycflow_webhook_deliveries_total", outcome="failed") == 1
    assert delta("kycflow_webhook_deliveries_total", outcome="delivered") == 1
    assert delta("kycflow_job_attempts_total", kind=WEBHOOK_DELIVERY_JOB) == 2
    # a refused try is recorded on its attempt and queues the next try as its own job: not a job failure
    assert delta("kycflow_job_failures_total", kind=WEBHOOK_DELIVERY_JOB, final="false") == 0
    assert delta("kycflow_job_failures_total", kind=WEBHOOK_DELIVERY_JOB, final="true") == 0
    assert delta("kycflow_job_attempts_total", kind="kyc_checks") == 1


async def test_a_job_that_uses_up_its_attempts_is_a_final_failure(api_factory):
    api = await api_factory(metrics_token=TOKEN, job_workers=0)

    async def broken(_: Any) -> None:
        raise RuntimeError("receiver exploded")

    api.container.jobs.register("metrics_probe", broken, max_attempts=1)
    await api.container.jobs.enqueue("metrics_probe", "metrics_probe:1", {})
    before = await scrape(api)
    assert await run_jobs(api.container) == 1
    after = await scrape(api)
    labels = {"kind": "metrics_probe", "final": "true"}
    assert value(after, "kycflow_job_failures_total", **labels) - value(before, "kycflow_job_failures_total", **labels) == 1
    assert value(after, "kycflow_jobs", status="failed", kind="metrics_probe") == 1


async def test_model_tasks_are_timed_and_counted_in_flight(api_factory):
    api = await api_factory(metrics_token=TOKEN, ml_workers=1)
    release, started = threading.Event(), threading.Event()

    def held_task(_: Any) -> str:
        started.set()
        release.wait(10)
        return "done"

    before = await scrape(api)
    first = asyncio.create_task(api.container.ml.run(held_task))
    second = asyncio.create_task(api.container.ml.run(held_task))  # waits: one worker
    await asyncio.to_thread(started.wait, 10)
    during = await scrape(api)
    release.set()
    assert await first == await second == "done"
    after = await scrape(api)
    assert value(during, "kycflow_ml_tasks_in_flight") - value(before, "kycflow_ml_tasks_in_flight") == 1
    assert value(during, "kycflow_ml_queue_depth") - value(before, "kycflow_ml_queue_depth") == 1
    assert value(after, "kycflow_ml_tasks_in_flight") == value(before, "kycflow_ml_tasks_in_flight")
    assert value(after, "kycflow_ml_queue_depth") == value(before, "kycflow_ml_queue_depth")
    assert value(after, "kycflow_ml_task_duration_seconds_count", task="held_task") - \
        value(before, "kycflow_ml_task_duration_seconds_count", task="held_task") == 2


async def test_open_streams_and_rate_limit_refusals_are_counted(api_factory):
    api = await api_factory(metrics_token=TOKEN, rate_limits={"auth": "1/hour"})
    before = await scrape(api)
    sub = api.container.events_hub.subscribe(frozenset({"user:x"}))
    opened = await scrape(api)
    api.container.events_hub.unsubscribe(sub)
    api.container.events_hub.unsubscribe(sub)  # twice: counted once
    login = {"identifier": "nobody@example.com", "password": "wrong-password-123"}
    assert (await api.client.post("/auth/login", json=login)).status_code == 401
    assert (await api.client.post("/auth/login", json=login)).status_code == 429
    after = await scrape(api)
    assert value(opened, "kycflow_event_streams_open") - value(before, "kycflow_event_streams_open") == 1
    assert value(after, "kycflow_event_streams_open") == value(before, "kycflow_event_streams_open")
    labels = {"group": "auth", "limit": "rate"}
    assert value(after, "kycflow_rate_limit_refusals_total", **labels) - \
        value(before, "kycflow_rate_limit_refusals_total", **labels) == 1


async def test_a_metrics_port_serves_the_same_figures_without_the_api(api_factory):
    port = free_port()
    api = await api_factory(metrics_port=port, job_workers=0)
    await api.container.jobs.enqueue("kyc_checks", "kyc_checks:metrics-port", {"case_id": "none"})
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert value(parse(r.text), "kycflow_jobs", status="queued", kind="kyc_checks") == 1
        assert (await client.get(f"http://127.0.0.1:{port}/other")).status_code == 404
    # The API port still refuses it: no token is set.
    assert (await api.client.get("http://testserver/metrics")).status_code == 404


async def test_a_made_up_method_is_one_series_not_one_per_name(api_factory):
    api = await api_factory(metrics_token=TOKEN)
    before = await scrape(api)
    for method in ("FOO", "BAR"):
        assert (await api.client.request(method, "/users/me")).status_code == 405
    after = await scrape(api)
    labels = {"route": "/api/v1/users/me", "method": "OTHER", "status": "405"}
    assert value(after, "kycflow_http_requests_total", **labels) - \
        value(before, "kycflow_http_requests_total", **labels) == 2
    assert not any(("method", m) in labels_ for _, labels_ in after for m in ("FOO", "BAR"))
