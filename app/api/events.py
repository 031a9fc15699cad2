"""`GET /events`: the signed-in user's live events as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from app.api.deps import ContainerDep, PrincipalDep
from app.api.routing import ExactJsonRoute
from app.api.schemas.common import error_responses
from app.bootstrap import Container
from app.domain.errors import DomainError, InvalidInput
from app.domain.events import Event, iso_z
from app.services.auth import Principal
from app.services.events import StreamEnded, Subscription

router = APIRouter(tags=["Users"], route_class=ExactJsonRoute)
REPLAY_PAGE = 500

_EXAMPLE = ('retry: 3000\n\n'
            'id: 6741f0c2a1b2c3d4e5f60741\nevent: kyc.approved\n'
            'data: {"type":"kyc.approved","timestamp":"2026-11-22T10:00:00.000Z",'
            '"data":{"kyc_id":"6741f0c2a1b2c3d4e5f60718","status":"APPROVED","reason":null}}\n\n'
            ': heartbeat\n\n'
            'id: 6741f0c2a1b2c3d4e5f60741\nevent: stream.end\n'
            'data: {"type":"stream.end","timestamp":"2026-11-22T10:05:00.000Z","data":{"reason":"shutdown"}}\n\n')
END_EVENT = "stream.end"  # not a domain event: the server ended this stream (reason: shutdown, too_slow, token_expired)


def _frame(event: Event | End) -> bytes:
    envelope = event.envelope()
    data = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {envelope['type']}\ndata: {data}\n\n".encode()


@router.get("/events", summary="Live events (Server-Sent Events)", response_class=StreamingResponse,
            responses={200: {"description": "An endless `text/event-stream`: `id`, `event` (the type) and `data` "
                                            "(`{type, timestamp, data}`) per event; `: heartbeat` comments; a last `stream.end` "
                                            "event when the server ends it, whose id a reconnect sends as Last-Event-ID.",
                             "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}}},
                       **error_responses(401, (400, "invalid_last_event_id",
                                               "Last-Event-ID is not an id this stream sent."))})
async def live_events(
    principal: PrincipalDep, c: ContainerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description="Resume after this event id: "
                                                "what was missed is sent first (browsers send it on reconnect)")]
    = None,
) -> StreamingResponse:
    """A customer receives their own case and loan events; staff (`kyc:read_any`) also the review queue's
    `kyc.*` events. Events made by any instance or worker arrive; a heartbeat comment every ~15 s. The
    stream ends when the access token expires (reconnect with a fresh one and `Last-Event-ID`), and
    within one heartbeat of its session ending (logout, password change, suspension). The same events
    are served over Socket.IO at `/socket.io` for `socket.io-client` apps (see the README)."""
    if last_event_id is not None and not ObjectId.is_valid(last_event_id):
        raise InvalidInput("Last-Event-ID is not an id this stream sent.", code="invalid_last_event_id")
    feed = live_feed(c, principal, last_event_id)  # subscribed now, before the response starts

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n\n"
        async with aclosing(feed):
            async for item in feed:  # a heartbeat is also how a vanished client is noticed: the write fails
                yield b": heartbeat\n\n" if item is None else _frame(item)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@dataclass(frozen=True)
class End:
    """The last item of a feed the server ends (`reason`: shutdown, too_slow, token_expired), sent as a
    `stream.end` event. Its id is the last event sent (or where the feed began), so a reconnect that
    sends it as Last-Event-ID (`last_event_id`) replays exactly what came after."""

    reason: str
    id: str
    at: datetime

    def envelope(self) -> dict[str, Any]:
        return {"type": END_EVENT, "timestamp": iso_z(self.at), "data": {"reason": self.reason}}


Feed = AsyncGenerator[Event | End | None, None]


def live_feed(c: Container, principal: Principal, last_event_id: str | None) -> Feed:
    """One viewer's live events, for SSE and Socket.IO alike: the events after `last_event_id` first,
    then live ones from the outbox (through the process's hub); None when a heartbeat is due; an `End`
    last when the server ends it. It stops without an `End` once the session ended. Subscribes at once,
    before reading what was missed, so nothing falls between the two (duplicates are skipped)."""
    audiences = c.events.audiences_of(principal.user)
    return _feed(c, principal, last_event_id, audiences, c.events_hub.subscribe(audiences, after_id=last_event_id))


async def _feed(c: Container, principal: Principal, last_event_id: str | None, audiences: frozenset[str],
                sub: Subscription) -> Feed:
    heartbeat, clock = c.settings.events_heartbeat_seconds, c.clock
    # The feed lives as long as the token it was opened with, and as long as its session: that is
    # read again at each heartbeat and before each event (one read), so a revoked session or a
    # suspended account receives nothing more and its feed ends within one heartbeat.
    expires = principal.claims.exp

    async def signed_in() -> bool:
        try:
            await c.auth.recheck(principal)
        except DomainError:
            return False
        return True

    sent: set[str] = set()
    last = sub.floor_id  # Last-Event-ID, or the moment it subscribed
    try:
        after = last_event_id
        while after is not None:
            missed = await c.events.missed(after, audiences, limit=REPLAY_PAGE)
            if missed and after != last_event_id and not await signed_in():  # the first page: just checked
                return
            for event in missed:
                sent.add(event.id)
                last = event.id
                yield event
            after = missed[-1].id if len(missed) == REPLAY_PAGE else None
        while True:
            left = (expires - clock.now()).total_seconds()
            if left <= 0:
                yield End("token_expired", last, clock.now())
                return
            try:
                live = await sub.next(min(heartbeat, left))
            except StreamEnded as ended:
                yield End(str(ended), last, clock.now())
                return
            if live is not None and live.id in sent:
                continue
            if not await signed_in():
                return
            if live is not None:
                last = live.id
            yield live
    finally:
        c.events_hub.unsubscribe(sub)
