"""Webhooks: admins' endpoints, and deliveries of the outbox's events to the Standard Webhooks spec.

**Flow.** `EventService.publish` queues one `webhook_fanout` job per event, in the state change's
transaction. That job queues one `webhook_delivery` job per subscribed endpoint (key: event and
endpoint, so running it twice queues nothing twice). A delivery job signs and POSTs the event and
records the attempt; a non-2xx answer, a timeout or a refused address raises, and the job
mechanism retries it later. Deliveries run on their own workers (`WEBHOOK_DELIVERY_WORKERS`, the
`webhooks` lane of `app/services/jobs.py`), and one try takes at most `WEBHOOK_TIMEOUT_SECONDS`
(default 5) in all: a slow receiver delays only deliveries, never KYC checks or notices.

**Retry schedule** (`WEBHOOK_MAX_ATTEMPTS`, `WEBHOOK_BACKOFF_BASE_SECONDS`, `WEBHOOK_BACKOFF_CAP_SECONDS`;
defaults 14, 60 s, 4 h): tries at 0, 1, 3, 7, 15, 31, 63 min, 2 h 7, 4 h 15, then every 4 h, the
14th and last 24 h 15 min after the first. Then the job is `failed` (`GET /admin/jobs?status=failed`,
retry there) and the attempts stay listed under the endpoint.

**Secret rotation.** A new `whsec_` secret signs at once; the previous one keeps signing beside
it for `WEBHOOK_SECRET_GRACE_SECONDS` (default 24 h; 0 = never), both in one `webhook-signature`
header as the spec allows, so receivers can switch secrets without missing a delivery.

**Network policy.** The URL is checked when registered and again before every try (DNS may have
changed meanwhile): every address the host resolves to must be public, and the request goes to the
vetted address itself (Host header and TLS SNI keep the name), so a second lookup cannot slip in a
private one. Redirects are not followed; proxies from the environment are not used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from app import metrics
from app.domain.audit import AuditAction, ClientInfo
from app.domain.events import WEBHOOK_FANOUT_JOB, Event
from app.domain.jobs import Job, next_run_at
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.domain.webhooks import (
    SECRET_PREFIX,
    WEBHOOK_DELIVERY_JOB,
    WEBHOOK_DELIVERY_LANE,
    DeliveryAttempt,
    DeliveryAttemptNotFound,
    InvalidWebhookUrl,
    SigningSecret,
    WebhookDisabled,
    WebhookEndpoint,
    WebhookNotFound,
    WebhookTarget,
    check_addresses,
    check_events,
    grace_end,
    parse_target,
)
from app.repositories.events import EventRepository
from app.repositories.webhooks import WebhookAttemptRepository, WebhookEndpointRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.jobs import JobService

log = logging.getLogger("kycflow.webhooks")
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_ERROR_CHARS = 300
RESOLVE_TIMEOUT_SECONDS = 5.0


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (off the event loop: asyncio's getaddrinfo runs in a thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(signing_secrets: list[str], msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers; one `v1,<sig>` per secret, space-separated."""
    signature = " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=at, data=body) for s in signing_secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


class WebhookDeliveryError(Exception):
    """A try that did not get a 2xx: the job mechanism retries it (the message lands in `last_error`)."""


@dataclass(frozen=True)
class WebhookSettings:
    production: bool = False
    timeout_seconds: float = 5.0  # one whole try: connect, send, the receiver's status line and headers
    max_attempts: int = 14
    backoff_base_seconds: float = 60.0
    backoff_cap_seconds: float = 14_400.0
    secret_grace_seconds: float = 86_400.0


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: float
    error: str | None

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookService:
    def __init__(self, *, settings: WebhookSettings, endpoints: WebhookEndpointRepository,
                 attempts: WebhookAttemptRepository, events: EventRepository, jobs: JobService, audit: AuditService,
                 clock: Clock, resolver: Resolver = resolve) -> None:
        self.s, self.endpoints, self.attempts, self.events = settings, endpoints, attempts, events
        self.jobs, self.audit, self.clock, self.resolver = jobs, audit, clock, resolver
        self._client: httpx.AsyncClient | None = None
        jobs.register(WEBHOOK_FANOUT_JOB, self._fanout_job, timeout=60)
        jobs.register(WEBHOOK_DELIVERY_JOB, self._delivery_job, timeout=settings.timeout_seconds + 30,
                      max_attempts=settings.max_attempts, backoff_base=settings.backoff_base_seconds,
                      backoff_cap=settings.backoff_cap_seconds, lane=WEBHOOK_DELIVERY_LANE)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- admin ---------------------------------------------------------------------------

    async def create(self, admin: User, *, url: str, events: list[str], description: str,
                     client: ClientInfo) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its secret (returned once; stored encrypted)."""
        types = check_events(events)
        await self._vet(url)
        now, secret = self.clock.now(), new_secret()
        endpoint = await self.endpoints.add(WebhookEndpoint(
            id=self.endpoints.new_id(), url=url, events=types, description=description, enabled=True,
            secrets=(SigningSecret(secret, now),), created_at=now, updated_at=now, created_by=admin.id))
        await self.audit.record(AuditAction.WEBHOOK_CREATED, user_id=None, actor=admin, client=client,
                                webhook_id=endpoint.id, url=url, events=list(types))
        return endpoint, secret

    async def list_endpoints(self, *, page: PageRequest) -> Page[WebhookEndpoint]:
        return await self.endpoints.search(page=page)

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        endpoint = await self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise WebhookNotFound()
        return endpoint

    async def disable(self, admin: User, endpoint_id: str, client: ClientInfo) -> WebhookEndpoint:
        """No new deliveries; queued retries end as no-ops. The attempts stay listed."""
        endpoint = await self.endpoints.disable(endpoint_id, self.clock.now())
        if endpoint is None:
            return await self.get(endpoint_id)  # already disabled (DELETE twice): as it is, or 404
        await self.audit.record(AuditAction.WEBHOOK_DISABLED, user_id=None, actor=admin, client=client,
                                webhook_id=endpoint.id)
        return endpoint

    async def rotate(self, admin: User, endpoint_id: str, client: ClientInfo) -> tuple[WebhookEndpoint, str]:
        endpoint = await self.get(endpoint_id)
        if not endpoint.enabled:  # a deleted endpoint gets no new secret: nothing would ever use it
            raise WebhookDisabled("The endpoint is deleted; register a new one.")
        now, secret = self.clock.now(), new_secret()
        grace = self.s.secret_grace_seconds
        # The old secret(s) keep signing beside the new one until the grace period ends.
        kept = () if grace <= 0 else tuple(SigningSecret(s.secret, s.created_at, s.expires_at or grace_end(now, grace))
                                           for s in endpoint.secrets if s.active(now))
        updated = await self.endpoints.replace_secrets(endpoint, (SigningSecret(secret, now), *kept), now)
        if updated is None:
            raise WebhookDisabled("The endpoint changed meanwhile; rotate again.", code="webhook_changed")
        await self.audit.record(AuditAction.WEBHOOK_SECRET_ROTATED, user_id=None, actor=admin, client=client,
                                webhook_id=endpoint.id)
        return updated, secret

    async def list_attempts(self, endpoint_id: str, *, page: PageRequest) -> Page[DeliveryAttempt]:
        await self.get(endpoint_id)
        return await self.attempts.for_endpoint(endpoint_id, page=page)

    async def redeliver(self, admin: User, endpoint_id: str, attempt_id: str, client: ClientInfo) -> Job:
        """Sends the attempt's event again as a new delivery (same `webhook-id`, its own retries)."""
        endpoint = await self.get(endpoint_id)
        attempt = await self.attempts.of_endpoint(endpoint.id, attempt_id)
        if attempt is None:
            raise DeliveryAttemptNotFound()
        if not endpoint.enabled:
            raise WebhookDisabled("The endpoint is disabled; nothing is sent to it.")
        if await self.events.get(attempt.event_id) is None:
            raise DeliveryAttemptNotFound("The event is no longer kept (EVENTS_RETENTION_DAYS).",
                                          code="webhook_event_expired")
        delivery = f"redeliver:{uuid.uuid4().hex[:12]}"
        job = await self.jobs.enqueue(WEBHOOK_DELIVERY_JOB, f"{WEBHOOK_DELIVERY_JOB}:{attempt.event_id}:{endpoint.id}:"
                                      f"{delivery}", {"event_id": attempt.event_id, "endpoint_id": endpoint.id,
                                                      "delivery": delivery})
        await self.audit.record(AuditAction.WEBHOOK_REDELIVERED, user_id=None, actor=admin, client=client,
                                webhook_id=endpoint.id, event_id=attempt.event_id, job_id=job.id)
        return job

    # --- the network policy --------------------------------------------------------------

    async def _vet(self, url: str) -> tuple[WebhookTarget, list[str]]:
        target = parse_target(url, production=self.s.production)
        try:
            addresses = await asyncio.wait_for(self.resolver(target.host, target.port), RESOLVE_TIMEOUT_SECONDS)
        except (OSError, UnicodeError):  # socket.gaierror and TimeoutError are OSErrors
            addresses = []
        check_addresses(addresses, target=target, production=self.s.production)
        return target, addresses

    # --- jobs ----------------------------------------------------------------------------

    async def _fanout_job(self, job: Job) -> None:
        event = await self.events.get(job.payload["event_id"])
        if event is None:  # past EVENTS_RETENTION_DAYS: the job commits with its event, so never before
            return
        for endpoint in await self.endpoints.subscribed(event.type.value, created_by=event.created_at):
            await self.jobs.enqueue(WEBHOOK_DELIVERY_JOB, f"{WEBHOOK_DELIVERY_JOB}:{event.id}:{endpoint.id}",
                                    {"event_id": event.id, "endpoint_id": endpoint.id, "delivery": "auto"})

    async def _delivery_job(self, job: Job) -> None:
        payload = job.payload
        endpoint = await self.endpoints.get(payload["endpoint_id"])
        if endpoint is None or not endpoint.enabled:
            return  # disabled meanwhile: nothing more is sent
        if await self.attempts.delivered(payload["event_id"], endpoint.id, payload["delivery"]):
            return  # a second run of a job whose try succeeded
        event = await self.events.get(payload["event_id"])
        if event is None:
            return
        outcome = await self.send(endpoint, event)
        metrics.WEBHOOK_DELIVERIES.labels("delivered" if outcome.success else "failed").inc()
        now = self.clock.now()
        retry = None if outcome.success or job.attempts_exhausted else next_run_at(
            now, job.attempts, base=self.s.backoff_base_seconds, cap=self.s.backoff_cap_seconds)
        await self.attempts.add(DeliveryAttempt(
            id="", endpoint_id=endpoint.id, event_id=event.id, event_type=event.type.value,
            delivery=payload["delivery"], attempt=job.attempts, at=now, url=endpoint.url,
            status_code=outcome.status_code, duration_ms=outcome.duration_ms, error=outcome.error,
            next_retry_at=retry, success=outcome.success))
        if not outcome.success:
            raise WebhookDeliveryError(outcome.error or f"HTTP {outcome.status_code}")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No redirects (a 3xx is a failed try), no proxies from the environment.
            self._client = httpx.AsyncClient(timeout=self.s.timeout_seconds, follow_redirects=False, trust_env=False,
                                             limits=httpx.Limits(max_keepalive_connections=20))
        return self._client

    async def send(self, endpoint: WebhookEndpoint, event: Event) -> Outcome:
        """One signed try; never raises for the receiver's or the network's failures."""
        body = json.dumps(event.envelope(), separators=(",", ":"), ensure_ascii=False)
        # The wall clock, not the service clock: receivers compare it with theirs (5 minutes' tolerance).
        headers = sign(endpoint.signing_secrets(self.clock.now()), event.id, datetime.now(UTC), body)
        start = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - start) * 1000, 2)

        try:
            target, addresses = await self._vet(endpoint.url)
        except InvalidWebhookUrl as exc:
            return Outcome(None, took(), exc.message[:MAX_ERROR_CHARS])
        url, host_header, extensions = _pinned(endpoint.url, target, addresses[0])
        try:
            # httpx's timeout bounds each read and write; this bounds the whole try (a receiver that
            # trickles its headers a byte at a time holds a delivery worker no longer than one that hangs).
            async with asyncio.timeout(self.s.timeout_seconds), self._http().stream(
                "POST", url, content=body.encode(), extensions=extensions,
                headers={**headers, "content-type": "application/json", "user-agent": "KYC-Flow-Webhooks/1",
                         "host": host_header},
            ) as response:  # the receiver's body is never read: only its status counts
                return Outcome(response.status_code, took(), None if response.is_success
                               else f"HTTP {response.status_code}")
        except (httpx.TimeoutException, TimeoutError):
            return Outcome(None, took(), f"timeout after {self.s.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, took(), f"{type(exc).__name__}: {str(exc)[:200] or 'connection failed'}")


def _pinned(url: str, target: WebhookTarget, address: str) -> tuple[str, str, dict[str, Any]]:
    """The URL aimed at the vetted address, the Host header it must carry, and TLS's server name."""
    parts = urlsplit(url)
    netloc_host = f"[{address}]" if ":" in address else address
    default = (target.scheme == "https" and target.port == 443) or (target.scheme == "http" and target.port == 80)
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = urlunsplit((target.scheme, netloc_host if default else f"{netloc_host}:{target.port}",
                         parts.path or "/", parts.query, ""))
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, host_header, extensions
