"""Live events over Socket.IO at `/socket.io` (python-socketio's ASGI server beside the API), for the apps
built on `socket.io-client` against the older services. The same events as `GET /events`, from the
same feed (`live_feed`: the outbox through the process's hub, so events made by any instance or worker
arrive): the event name is the type, the first argument the `{type, timestamp, data}` envelope, the
second the event id. The client sends `{token, last_event_id}` as the handshake's `auth`; it joins only
the rooms of what it may see (its own `user:<id>`; staff and admins as their permissions allow). The
feed ends as SSE's does: a `stream.end` event then a disconnect when the token expires or the server
stops, a disconnect within one heartbeat of the session ending (logout, password change, suspension)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import socketio
from bson import ObjectId
from fastapi import FastAPI

from app.api.events import Feed, live_feed
from app.domain.errors import DomainError, InvalidInput, Unauthenticated


def mount_socketio(app: FastAPI, cors_origins: list[str] | None) -> socketio.AsyncServer:
    """`cors_origins`: the browser origins allowed (CORS_ORIGINS); None: the same origin only (apps that
    send no Origin header, mobile and server ones, are not concerned)."""
    # Clients send nothing but the handshake's auth: a small buffer caps what one message may hold.
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=cors_origins, logger=False,
                               engineio_logger=False, max_http_buffer_size=64 * 1024)
    pumps: dict[str, asyncio.Task[None]] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        c = app.state.container
        auth = auth if isinstance(auth, dict) else {}
        token, last = auth.get("token"), auth.get("last_event_id")
        try:
            if not isinstance(token, str) or not token:
                raise Unauthenticated("Send your bearer access token as auth.token.", code="not_authenticated")
            if last is not None and not (isinstance(last, str) and ObjectId.is_valid(last)):
                raise InvalidInput("last_event_id is not an id this stream sent.", code="invalid_last_event_id")
            principal = await c.auth.authenticate(token.removeprefix("Bearer "))
        except DomainError as exc:  # socket.io-client's `connect_error`: err.message, err.data.error_code
            raise socketio.exceptions.ConnectionRefusedError(exc.message, {"error_code": exc.code}) from None
        for room in sorted(c.events.audiences_of(principal.user)):
            await sio.enter_room(sid, room)
        pumps[sid] = asyncio.create_task(pump(sid, live_feed(c, principal, last)), name=f"socketio-{sid}")

    async def pump(sid: str, feed: Feed) -> None:
        try:
            async with aclosing(feed):
                # The connect handler returns before the server confirms the connection: wait for that.
                for _ in range(500):
                    if sio.manager.is_connected(sid, "/"):
                        break
                    await asyncio.sleep(0.01)
                async for item in feed:  # a heartbeat (None) only rechecks the session: engine.io pings keep it open
                    if item is not None:  # an event, or the `stream.end` the feed ends with
                        envelope = item.envelope()
                        await sio.emit(envelope["type"], (envelope, item.id), to=sid)
        finally:
            if pumps.pop(sid, None) is not None:  # ended here, not by the client leaving
                await sio.disconnect(sid)

    @sio.event
    async def disconnect(sid: str, *_: Any) -> None:
        if (task := pumps.pop(sid, None)) is not None:
            task.cancel()  # its feed unsubscribes as it closes

    app.mount("/socket.io", socketio.ASGIApp(sio, socketio_path="socket.io"))
    return sio
