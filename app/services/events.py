"""Domain events: publishing into the outbox, and the per-process hub behind `GET /events`.

**Publishing** (`EventService.publish`) writes the event and queues its webhook fan-out job in
the caller's unit of work, so both commit with the state change or not at all.

**The live stream** reads the outbox, never an in-memory bus, so an event produced by another
instance or by `kycflow worker` reaches every viewer. One `EventHub` per process runs one poll
loop while anyone is connected: ONE query per `EVENTS_POLL_SECONDS` for all viewers, fanned out
in memory by audience. Each poll re-reads a short window (`margin_seconds`) before the previous
poll, because ids are taken when an event is built and a transaction may commit a moment later
(or on an instance whose clock runs a little behind); ids already delivered are skipped.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app import metrics
from app.domain.events import (
    WEBHOOK_FANOUT_JOB,
    Event,
    EventType,
    audiences_for,
    safe_payload,
    viewer_audiences,
)
from app.domain.users import User
from app.repositories.events import EventRepository, id_time, new_event_id
from app.repositories.transactions import UnitOfWork
from app.services.clock import Clock
from app.services.jobs import JobService

log = logging.getLogger("kycflow.events")
STAFF_PERMISSION = "kyc:read_any"  # who sees the review-queue events live


class EventService:
    def __init__(self, repo: EventRepository, jobs: JobService, clock: Clock) -> None:
        self.repo, self.jobs, self.clock = repo, jobs, clock

    async def publish(self, event_type: EventType, *, user_id: str, data: Mapping[str, Any],
                      tx: UnitOfWork | None = None) -> Event:
        """Record that `event_type` happened to customer `user_id`, in the unit of work `tx` of the
        change, after the change succeeded: the event and its webhook fan-out job commit with it.
        `data` holds ids, statuses, masked numbers and amounts (`Decimal`, sent as exact strings);
        a clear document number or a float raises `UnsafeEventPayload` (a defect, caught by tests).
        Live viewers: the customer, plus staff for the review-queue events (`STAFF_EVENTS`)."""
        event = Event(id=new_event_id(), type=EventType(event_type), user_id=user_id, data=safe_payload(data),
                      created_at=self.clock.now(), audiences=audiences_for(EventType(event_type), user_id))
        await (tx.events if tx else self.repo).add(event)  # first: a fan-out job never finds its event missing
        await self.jobs.enqueue(WEBHOOK_FANOUT_JOB, f"{WEBHOOK_FANOUT_JOB}:{event.id}", {"event_id": event.id}, tx=tx)
        return event

    @staticmethod
    def audiences_of(user: User) -> frozenset[str]:
        return viewer_audiences(user.id, staff=user.can(STAFF_PERMISSION), admin=user.can("webhooks:manage"))

    async def missed(self, after_id: str, audiences: frozenset[str], *, limit: int = 500) -> list[Event]:
        return await self.repo.after(after_id, audiences=audiences, limit=limit)


_END = object()


class Subscription:
    """One connected viewer: the audiences it may see and a bounded queue the hub fills."""

    def __init__(self, audiences: frozenset[str], floor_id: str, size: int) -> None:
        self.audiences, self.floor_id = audiences, floor_id
        self.queue: asyncio.Queue[Any] = asyncio.Queue(size + 1)  # room for the end marker
        self.size = size
        self.ended, self.reason = False, ""

    def offer(self, event: Event) -> None:
        if self.ended or event.id <= self.floor_id or not self.audiences.intersection(event.audiences):
            return
        if self.queue.qsize() >= self.size:  # a stalled reader: end it; it resumes with Last-Event-ID
            log.warning("live event viewer too slow; stream ended", extra={"queued": self.size})
            self.end("too_slow")
            return
        self.queue.put_nowait(event)

    def end(self, reason: str = "shutdown") -> None:
        if not self.ended:
            self.ended, self.reason = True, reason
            self.queue.put_nowait(_END)

    async def next(self, timeout: float) -> Event | None:
        """The next event; None after `timeout` with nothing (time for a heartbeat). Raises
        `StreamEnded` once the hub closed this stream."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if item is _END:
            raise StreamEnded(self.reason)
        event: Event = item
        return event


class StreamEnded(Exception):
    """The server is shutting down (`shutdown`), or the viewer fell too far behind (`too_slow`)."""


class EventHub:
    def __init__(self, repo: EventRepository, *, poll_seconds: float, margin_seconds: float = 3.0,
                 page: int = 500, queue_size: int = 1000) -> None:
        self.repo, self.poll_seconds, self.margin = repo, poll_seconds, timedelta(seconds=margin_seconds)
        self.page, self.queue_size = page, queue_size
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.polls = 0  # queries run (tests and the bench read it)

    @property
    def viewers(self) -> int:
        return len(self._subs)

    def subscribe(self, audiences: frozenset[str], *, after_id: str | None = None) -> Subscription:
        """A viewer receives events above `after_id` (default: from now on)."""
        sub = Subscription(audiences, after_id or new_event_id(), self.queue_size)
        if self._closed:
            sub.end()
            return sub
        self._subs.add(sub)
        metrics.EVENT_STREAMS.inc()
        if self._task is None or self._task.done():
            # A fresh context: the shared poll belongs to no request (logs and command counts).
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-hub",
                                                                context=contextvars.Context())
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:  # `close` may have let it go already
            self._subs.discard(sub)
            metrics.EVENT_STREAMS.dec()

    def close(self) -> None:
        """Ends every stream (each response finishes cleanly) and the poll loop."""
        self._closed = True
        for sub in list(self._subs):
            sub.end()
        metrics.EVENT_STREAMS.dec(len(self._subs))
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        seen: dict[str, datetime] = {}
        last_poll = datetime.now(UTC)
        after: str | None = None
        while self._subs:
            started = datetime.now(UTC)
            floor = last_poll - self.margin
            try:
                events = await self.repo.since(floor, after_id=after, limit=self.page)
                self.polls += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away for a moment: viewers keep waiting
                log.warning("live event poll failed", exc_info=True)
                await asyncio.sleep(self.poll_seconds)
                continue
            for event in events:
                if event.id in seen:
                    continue
                seen[event.id] = id_time(event.id)
                for sub in list(self._subs):
                    sub.offer(event)
                    if sub.ended:  # fell behind, or its response never started: forget it
                        self._subs.discard(sub)
            if len(events) == self.page:  # a burst: page on at once, from the last id
                after = events[-1].id
                continue
            after = None
            last_poll = started
            horizon = floor - timedelta(seconds=2)
            for event_id in [k for k, t in seen.items() if t < horizon]:
                del seen[event_id]
            await asyncio.sleep(self.poll_seconds)
