"""The per-process hub behind GET /events, on an in-memory outbox: one query per poll for every
viewer, fan-out by audience, a late-committed event delivered once, a stalled viewer cut loose."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from app.domain.events import Event, EventType, audiences_for
from app.repositories.events import floor_id, new_event_id
from app.services.events import EventHub, StreamEnded


class Outbox:
    """What EventRepository.since answers, from a list; counts the queries."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.queries = 0

    def add(self, user_id: str, event_type: EventType = EventType.LOAN_APPLIED, *, ns: int | None = None) -> Event:
        event = Event(id=new_event_id(ns), type=event_type, user_id=user_id, data={}, created_at=datetime.now(UTC),
                      audiences=audiences_for(event_type, user_id))
        self.events.append(event)
        return event

    async def since(self, floor: datetime, *, after_id: str | None = None, limit: int) -> list[Event]:
        self.queries += 1
        low = str(floor_id(floor))
        found = sorted((e for e in self.events if e.id >= low and (after_id is None or e.id > after_id)),
                       key=lambda e: e.id)
        return found[:limit]


async def _drain(sub: Any, wait: float = 0.3) -> list[str]:
    got = []
    while True:
        event = await sub.next(wait)
        if event is None:
            return got
        got.append(event.type.value + ":" + event.user_id)


async def test_one_query_per_poll_serves_every_viewer_by_audience():
    outbox = Outbox()
    hub = EventHub(outbox, poll_seconds=0.05)  # type: ignore[arg-type]
    viewers = [hub.subscribe(frozenset({f"user:u{n}"})) for n in range(50)]
    staff = hub.subscribe(frozenset({"user:a1", "staff"}))
    outbox.add("u1", EventType.LOAN_APPLIED)
    outbox.add("u2", EventType.KYC_SUBMITTED)
    await asyncio.sleep(0.5)
    assert outbox.queries <= 12  # about one per 0.05 s, not 51 per poll
    assert await _drain(viewers[1]) == ["loan.applied:u1"]
    assert await _drain(viewers[2]) == ["kyc.submitted:u2"]
    assert await _drain(viewers[3], 0.05) == []
    assert await _drain(staff) == ["kyc.submitted:u2"]  # the review queue, not a customer's loan
    hub.close()
    with pytest.raises(StreamEnded):
        await viewers[0].next(1)


async def test_an_event_committed_late_is_delivered_once():
    """A transaction may commit after a later-numbered event was already seen (or another instance's
    clock runs behind): the poll looks back a short margin and skips what it already delivered."""
    outbox = Outbox()
    hub = EventHub(outbox, poll_seconds=0.05, margin_seconds=3)  # type: ignore[arg-type]
    now_ns = time.time_ns()
    sub = hub.subscribe(frozenset({"user:u1"}), after_id=new_event_id(now_ns - 2_000_000_000))
    outbox.add("u1", EventType.LOAN_APPROVED, ns=now_ns)
    await asyncio.sleep(0.2)
    outbox.add("u1", EventType.LOAN_APPLIED, ns=now_ns - 1_500_000_000)  # built 1.5 s before, visible only now
    await asyncio.sleep(0.3)
    assert await _drain(sub) == ["loan.approved:u1", "loan.applied:u1"]
    hub.close()


async def test_a_viewer_that_stops_reading_is_ended_not_buffered_without_bound():
    outbox = Outbox()
    hub = EventHub(outbox, poll_seconds=0.02, queue_size=3)  # type: ignore[arg-type]
    stalled = hub.subscribe(frozenset({"user:u1"}))
    for _ in range(5):
        outbox.add("u1")
    await asyncio.sleep(0.2)
    assert hub.viewers == 0
    received = []
    with pytest.raises(StreamEnded):
        while True:
            received.append(await stalled.next(1))
    assert len(received) == 3  # what was queued; then the end (the client resumes with Last-Event-ID)
    hub.close()


async def test_a_burst_larger_than_a_page_is_read_page_by_page():
    outbox = Outbox()
    hub = EventHub(outbox, poll_seconds=0.05, page=10)  # type: ignore[arg-type]
    sub = hub.subscribe(frozenset({"user:u1"}))
    base = time.time_ns()
    for n in range(35):
        outbox.add("u1", ns=base + n * 1_000_000)
    await asyncio.sleep(0.4)
    assert len(await _drain(sub)) == 35
    hub.close()
