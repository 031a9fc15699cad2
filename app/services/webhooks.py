"""Webhooks: admins' endpoints, and deliveries of the outbox's events to the Standard Webhooks spec.

**Flow.** `EventService.publish` queues one `webhook_fanout` job per event, in the state change's
transaction. That job queues one `webhook_delivery` job per subscribed endpoint (key: event and
endpoint, so running it twice queues nothing twice). A delivery job signs and POSTs the event and
records the attempt; after a non-2xx answer, a timeout or a refused address it queues the next try
as a job of its own, due when the schedule says (its time is the attempt's `next_retry_at`).
Deliveries run on their own workers (`WEBHOOK_DELIVERY_WORKERS`, the `webhooks` lane of
`app/services/jobs.py`), one try takes at most `WEBHOOK_TIMEOUT_SECONDS` (default 5) in all, and at
most `WEBHOOK_ENDPOINT_CONCURRENCY` (2) tries per process go to one endpoint at once: a try beyond that
is put back for a few seconds without being made, so one slow receiver never holds every worker.

**Retry schedule** (Svix's, `WEBHOOK_RETRY_SCHEDULE`): after a failed try wait about 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 10 h: 8 tries, the last ~27.6 h after the first. Each wait is multiplied by a
random factor in [0.8, 1.2] (`WEBHOOK_RETRY_JITTER`, 0.2), so a receiver that comes back is not hit by
a wave. A 429 or 503 with `Retry-After` (seconds or an HTTP date) waits at least that long, at most
`WEBHOOK_RETRY_AFTER_CAP_SECONDS` (1 day). A `410 Gone` disables the endpoint at once; so does failing
every try for `WEBHOOK_DISABLE_AFTER_DAYS` (5): admins then get a `webhook.endpoint_disabled` event and
a mail. `POST .../replay` sends again every event whose last try since a time failed for good.

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
import random
import secrets
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from app import metrics
from app.domain.audit import AuditAction, ClientInfo
from app.domain.events import WEBHOOK_FANOUT_JOB, Event, EventType
from app.domain.jobs import Job
from app.domain.pages import Page, PageRequest
from app.domain.users import User, UserStatus
from app.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
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
    parse_retry_after,
    parse_target,
    retry_delay,
)
from app.repositories.events import EventRepository
from app.repositories.transactions import Transactions
from app.repositories.users import UserRepository
from app.repositories.webhooks import WebhookAttemptRepository, WebhookEndpointRepository
from app.services.audit import AuditService
from app.services.clock import Clock
from app.services.events import EventService
from app.services.jobs import JobService
from app.services.notifications import Notices

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


class EndpointBusy(Exception):
    """WEBHOOK_ENDPOINT_CONCURRENCY tries to the endpoint are under way here: the job mechanism puts this
    one back for a moment (the try is not made, nor counted as one)."""


@dataclass(frozen=True)
class WebhookSettings:
    production: bool = False
    timeout_seconds: float = 5.0  # one whole try: connect, send, the receiver's status line and headers
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    retry_jitter: float = 0.2
    retry_after_cap_seconds: float = 86_400.0
    disable_after_days: float = 5.0
    endpoint_concurrency: int = 2
    secret_grace_seconds: float = 86_400.0


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: float
    error: str | None
    retry_after: str | None = None

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookService:
    def __init__(self, *, settings: WebhookSettings, endpoints: WebhookEndpointRepository,
                 attempts: WebhookAttemptRepository, events: EventRepository, jobs: JobService, audit: AuditService,
                 clock: Clock, outbox: EventService, notices: Notices, users: UserRepository,
                 transactions: Transactions, resolver: Resolver = resolve) -> None:
        self.s, self.endpoints, self.attempts, self.events = settings, endpoints, attempts, events
        self.jobs, self.audit, self.clock, self.resolver = jobs, audit, clock, resolver
        self.outbox, self.notices, self.users, self.transactions = outbox, notices, users, transactions
        self.rand = random.random  # the jitter's source (tests pin it)
        self._client: httpx.AsyncClient | None = None
        self._busy: Counter[str] = Counter()  # endpoint id -> tries under way in this process
        jobs.register(WEBHOOK_FANOUT_JOB, self._fanout_job, timeout=60)
        # The job's own attempts and backoff only cover a busy endpoint (EndpointBusy) and a crashed
        # worker; the receiver's failures are retried on the schedule, each try a job of its own.
        jobs.register(WEBHOOK_DELIVERY_JOB, self._delivery_job, timeout=settings.timeout_seconds + 30,
                      max_attempts=1000, backoff_base=1.0, backoff_cap=2 * settings.timeout_seconds,
                      lane=WEBHOOK_DELIVERY_LANE)

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

    async def set_enabled(self, admin: User, endpoint_id: str, enabled: bool, client: ClientInfo) -> WebhookEndpoint:
        """Disabled: no new deliveries, queued retries end as no-ops, the attempts stay listed. Enabled
        again: new events are sent (replay sends the missed ones). Asked twice: as it is (or 404)."""
        now = self.clock.now()
        endpoint = await (self.endpoints.enable(endpoint_id, now) if enabled else self.endpoints.disable(endpoint_id, now))
        if endpoint is None:
            return await self.get(endpoint_id)
        await self.audit.record(AuditAction.WEBHOOK_ENABLED if enabled else AuditAction.WEBHOOK_DISABLED, user_id=None,
                                actor=admin, client=client, webhook_id=endpoint.id)
        return endpoint

    async def _auto_disable(self, endpoint: WebhookEndpoint, reason: str, last_error: str) -> None:
        """Disables a gone or long-failing endpoint and tells the admins (an event and a mail), once: the
        disable, the event, the mails and the audit entry commit together, so a crash leaves none or all."""
        now = self.clock.now()
        why = ("it answered 410 Gone" if reason == "gone" else
               f"every try failed for {self.s.disable_after_days:g} days (since {endpoint.failing_since or now:%Y-%m-%d %H:%M} UTC)")
        admins = [u for u in (await self.users.search(role="admin", page=PageRequest(1, 100))).items
                  if u.status is UserStatus.ACTIVE]

        async def step(tx: Any) -> bool:
            if await tx.webhooks.disable(endpoint.id, now, reason) is None:
                return False  # disabled meanwhile: whoever did it told them
            # Ids only: a URL or an error text could look like a document number to the payload guard.
            await self.outbox.publish(EventType.WEBHOOK_ENDPOINT_DISABLED, user_id="", tx=tx,
                                      data={"webhook_id": endpoint.id, "reason": reason})
            for admin in admins:
                await self.notices.queue(tx, admin, f"webhook_disabled:{endpoint.id}:{now.isoformat()}:{admin.id}",
                                         "A webhook endpoint was disabled", [
                                             f"The webhook endpoint {endpoint.url} was disabled: {why}.",
                                             f"Last error: {last_error}.", "Fix the receiver, enable the endpoint "
                                             "again and replay the failed deliveries (POST /api/v1/admin/webhooks/"
                                             f"{endpoint.id}/enable, then /replay)."])
            await self.audit.record(AuditAction.WEBHOOK_DISABLED, user_id=None, tx=tx, actor_role="system",
                                    webhook_id=endpoint.id, reason=reason)
            return True

        if await self.transactions.run(step):
            log.warning("webhook endpoint disabled", extra={"webhook_id": endpoint.id, "reason": reason})

    async def replay(self, admin: User, endpoint_id: str, since: datetime, client: ClientInfo) -> int:
        """Queues a new delivery of each event whose last try to the endpoint since `since` failed for
        good; the delivery is named after that try, so asking twice (a double click) queues it once."""
        endpoint = await self.get(endpoint_id)
        if not endpoint.enabled:
            raise WebhookDisabled("The endpoint is disabled; enable it before replaying.")
        failed = [a for a in await self.attempts.latest_since(endpoint.id, since)
                  if not a.success and a.next_retry_at is None]
        for a in failed:
            await self._queue(a.event_id, endpoint.id, f"replay:{a.id}")
        await self.audit.record(AuditAction.WEBHOOK_REPLAYED, user_id=None, actor=admin, client=client,
                                webhook_id=endpoint.id, since=since.isoformat(), events=len(failed))
        return len(failed)

    async def rotate(self, admin: User, endpoint_id: str, client: ClientInfo) -> tuple[WebhookEndpoint, str]:
        endpoint = await self.get(endpoint_id)
        if not endpoint.enabled:  # a deleted endpoint gets no new secret: nothing would ever use it
            raise WebhookDisabled("The endpoint is deleted; register a new one.")
        now, secret = self.clock.now(), new_secret()
        grace = self.s.secret_grace_seconds
        # The old secret(s) keep signing beside the new one until the grace period ends.
        kept = () if grace <= 0 else tuple(SigningSecret(s.secret, s.created_at, s.expires_at or now + timedelta(seconds=grace))
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
        job = await self._queue(attempt.event_id, endpoint.id, f"redeliver:{uuid.uuid4().hex[:12]}")
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
            await self._queue(event.id, endpoint.id)

    async def _queue(self, event_id: str, endpoint_id: str, delivery: str = "auto") -> Job:
        """A delivery's first try: once per key (event, endpoint, and the delivery unless automatic)."""
        key = f"{WEBHOOK_DELIVERY_JOB}:{event_id}:{endpoint_id}" + ("" if delivery == "auto" else f":{delivery}")
        return await self.jobs.enqueue(WEBHOOK_DELIVERY_JOB, key, {"event_id": event_id, "endpoint_id": endpoint_id,
                                                                   "delivery": delivery})

    async def _delivery_job(self, job: Job) -> None:
        p = job.payload
        endpoint = await self.endpoints.get(p["endpoint_id"])
        if endpoint is None or not endpoint.enabled:  # disabled meanwhile: nothing more is sent, and the
            await self.attempts.no_retry(p["event_id"], p["endpoint_id"], p["delivery"])  # attempts say so
            return
        if await self.attempts.delivered(p["event_id"], endpoint.id, p["delivery"]):
            return  # a second run of a job whose try succeeded
        event = await self.events.get(p["event_id"])
        if event is None:
            return
        if self._busy[endpoint.id] >= self.s.endpoint_concurrency:
            raise EndpointBusy(f"{self.s.endpoint_concurrency} tries to this endpoint under way")
        self._busy[endpoint.id] += 1
        try:
            outcome = await self.send(endpoint, event)
        finally:
            self._busy[endpoint.id] -= 1
        metrics.WEBHOOK_DELIVERIES.labels("delivered" if outcome.success else "failed").inc()
        now, attempt = self.clock.now(), p.get("attempt", 1)
        since = endpoint.failing_since or now
        stop = None if outcome.success else "gone" if outcome.status_code == 410 else "failing" if (
            now - since >= timedelta(days=self.s.disable_after_days)) else None
        delay = None if outcome.success or stop else retry_delay(
            self.s.retry_schedule, attempt, jitter=self.s.retry_jitter, rand=self.rand(),
            retry_after=parse_retry_after(outcome.retry_after, now) if outcome.status_code in (429, 503) else None,
            retry_after_cap=self.s.retry_after_cap_seconds)
        retry = None if delay is None else now + timedelta(seconds=delay)
        await self.attempts.add(DeliveryAttempt(
            id="", endpoint_id=endpoint.id, event_id=event.id, event_type=event.type.value, delivery=p["delivery"],
            attempt=attempt, at=now, url=endpoint.url, status_code=outcome.status_code,
            duration_ms=outcome.duration_ms, error=outcome.error, next_retry_at=retry, success=outcome.success))
        if outcome.success:
            if endpoint.failing_since is not None:
                await self.endpoints.set_failing(endpoint.id, None)
            return
        if retry is not None:  # the first try's key is the job's own (fan-out); later ones add their number
            base = job.key.split("#", 1)[0]
            await self.jobs.enqueue(WEBHOOK_DELIVERY_JOB, f"{base}#{attempt + 1}", {**p, "attempt": attempt + 1},
                                    run_at=retry)
        if endpoint.failing_since is None:
            await self.endpoints.set_failing(endpoint.id, now)
        if stop:
            await self._auto_disable(endpoint, stop, outcome.error or f"HTTP {outcome.status_code}")

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
                               else f"HTTP {response.status_code}", response.headers.get("retry-after"))
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
