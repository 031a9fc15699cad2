"""Prometheus metrics of this process (prometheus-client's default registry), and the listener a
process without HTTP (`kycflow worker`) or an operator who keeps them off the API port uses
(METRICS_PORT). Counters and histograms are updated where things happen (small hooks in the
middleware, the ML gateway, the job service, webhook deliveries, the event hub, the rate limits);
the database's own figures (cases, loans and jobs by status) are read when scraped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("kycflow.metrics")

HTTP_REQUESTS = Counter("kycflow_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
HTTP_DURATION = Histogram("kycflow_http_request_duration_seconds", "Time to answer an HTTP request",
                          ["route", "method"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ML_QUEUE = Gauge("kycflow_ml_queue_depth", "Model tasks waiting for a free worker")
ML_IN_FLIGHT = Gauge("kycflow_ml_tasks_in_flight", "Model tasks running in a worker")
ML_DURATION = Histogram("kycflow_ml_task_duration_seconds", "A model task from submission to its result, "
                        "queue wait included", ["task"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60))
JOB_ATTEMPTS = Counter("kycflow_job_attempts_total", "Job attempts started", ["kind"])
JOB_FAILURES = Counter("kycflow_job_failures_total", "Job attempts that failed (final: attempts used up)",
                       ["kind", "final"])
JOB_EFFECTS_SKIPPED = Counter(
    "kycflow_job_effects_skipped_total", "Outside effects (mails) skipped because an earlier attempt claimed them: "
    "each goes at most once, so one whose attempt died mid-send may be missing (check the mail server's log)",
    ["kind"])
WEBHOOK_DELIVERIES = Counter("kycflow_webhook_deliveries_total", "Webhook delivery tries", ["outcome"])
EVENT_STREAMS = Gauge("kycflow_event_streams_open", "Live event streams (SSE) open on this process")
RATE_LIMITED = Counter("kycflow_rate_limit_refusals_total", "Requests refused by the request limits (429)",
                       ["group", "limit"])
# Read from the database at scrape time: the same figures on every process (aggregate with max()).
KYC_CASES = Gauge("kycflow_kyc_cases", "KYC cases by status", ["status"])
LOANS = Gauge("kycflow_loans", "Loans by status", ["status"])
JOBS = Gauge("kycflow_jobs", "Jobs not done, by status and kind (queued = the backlog)", ["status", "kind"])
SCRAPE_ERRORS = Counter("kycflow_metrics_database_errors_total", "Scrapes whose database figures could not be read")


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # `labels()` costs more than the update itself


def observe_request(scope: dict[str, Any], status: int, seconds: float) -> None:
    """By the route's template (`/api/v1/kyc/{kyc_id}`), never the raw path, and a made-up method as
    OTHER: the series stay as few as the routes, whatever callers send."""
    method = scope["method"] if scope["method"] in _METHODS else "OTHER"
    key = (_template(scope), method, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (HTTP_REQUESTS.labels(key[0], method, str(status)), HTTP_DURATION.labels(key[0], method))
    series[0].inc()
    series[1].observe(seconds)


def _template(scope: dict[str, Any]) -> str:
    # FastAPI 0.16x keeps an included router's routes relative to its prefix; the full template is in
    # the route context it records. Other routes (docs, console) carry their full path themselves.
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    return getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None) or "unmatched"


Counts = dict[tuple[str, ...], int]


async def exposition(database: Callable[[], Awaitable[dict[Gauge, Counts]]] | None) -> bytes:
    """This process's metrics in the text format, with the database's figures read now. A database
    that cannot be read leaves those gauges at their last values and counts the failure."""
    if database is not None:
        try:
            figures = await database()
        except Exception as exc:
            SCRAPE_ERRORS.inc()
            log.warning("metrics: database figures not read", extra={"error": type(exc).__name__})
        else:
            for gauge, counts in figures.items():
                gauge.clear()  # no stale series: the figures name every status (0 where there are none)
                for labels, value in counts.items():
                    gauge.labels(*labels).set(value)
    return generate_latest()


async def serve(host: str, port: int, database: Callable[[], Awaitable[dict[Gauge, Counts]]] | None
                ) -> asyncio.Server:
    """A bare HTTP/1.0 listener answering `GET /metrics` (METRICS_PORT): on the event loop, so the
    database figures are read with the process's own client. Keep the port off public networks."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, path = (head.split(b" ", 2) + [b"", b""])[:2]
            if (method, path.split(b"?")[0]) == (b"GET", b"/metrics"):
                status, kind, body = b"200 OK", CONTENT_TYPE_LATEST.encode(), await exposition(database)
            else:
                status, kind, body = b"404 Not Found", b"text/plain", b"not found\n"
            writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Type: " + kind
                         + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=16384)
    log.info("metrics listening", extra={"host": host, "port": port})
    return server
