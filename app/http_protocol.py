"""The HTTP/1.1 protocol `kycflow serve` runs: uvicorn's h11 one, with the request head bounded.

httptools (uvicorn's default when installed) reads a request head of any size: an 8 MB header
was answered 200, and four connections holding unfinished 64 MB headers grew the process by
290 MB. Here a head is refused with 431 and the connection closed, before any application code
runs, when one field is over `max_field` bytes, the fields together are over `max_total`, or
there are more than `max_count` of them. An unfinished head is cut off once `max_total` bytes of
it are buffered (h11's incomplete-event limit), so a connection never holds more than that plus
one read.

A head must also arrive in time: `head_timeout` seconds from the connection's start (or from the
first byte after an answer, on a kept-alive connection) to its blank line, else the connection is
closed. uvicorn only times an idle connection, and any byte resets that, so a client sending one
short field every few seconds (slowloris) held its connection, and 64 KB of buffer, forever.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class HeaderLimits:
    max_field: int  # one field, name and value
    max_total: int  # the request line and every field
    max_count: int

    def problem(self, event: h11.Request) -> str | None:
        """Why a parsed request head is refused, or None."""
        if len(event.headers) > self.max_count:
            return f"The request has more than {self.max_count} header fields."
        total = len(event.method) + len(event.target)
        for name, value in event.headers:
            size = len(name) + len(value)
            if size > self.max_field:
                return f"A header field is larger than {self.max_field // 1024} KB."
            total += size + 4  # ": " and CRLF
        if total > self.max_total:
            return f"The request's header fields are larger than {self.max_total // 1024} KB together."
        return None


class _BoundedConnection(h11.Connection):
    """h11's server side, refusing a complete head over the limits as it refuses an unfinished one."""

    def __init__(self, limits: HeaderLimits, on_head: Any = None) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_total)
        self.limits = limits
        self.refusal: str | None = None
        self.on_head = on_head  # called once a whole head has arrived

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            if self.on_head is not None:
                self.on_head()
            self.refusal = self.limits.problem(event)
            if self.refusal:
                raise h11.RemoteProtocolError(self.refusal, error_status_hint=431)
        return event


def _envelope(detail: str) -> tuple[bytes, str]:
    # The error envelope of every other answer (app/api/errors.py), built here: no app runs for it.
    request_id = uuid.uuid4().hex
    body = {"detail": detail, "error_code": "header_fields_too_large", "status_code": 431,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request_id}
    return json.dumps(body).encode(), request_id


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol answering 431 (in the error envelope) where a head is too large."""

    limits = HeaderLimits(max_field=16 * 1024, max_total=64 * 1024, max_count=100)
    head_timeout = 10.0  # seconds a request head may take to arrive; a real client needs milliseconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _BoundedConnection(self.limits, on_head=self._head_arrived)
        self._head_timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        # The first byte of the next head on a kept-alive connection starts its clock; later bytes do not.
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.info("closed a connection whose request head took over %g s", self.head_timeout)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every RemoteProtocolError with 400; a head over the limits is a 431.
        conn = self.conn
        assert isinstance(conn, _BoundedConnection)
        overflow = len(conn.trailing_data[0]) > self.limits.max_total
        if conn.refusal is None and not overflow:
            super().send_400_response(msg)
            return
        detail = conn.refusal or f"The request's header fields are larger than {self.limits.max_total // 1024} KB."
        self.logger.warning("refused a request head: %s", detail)
        body, request_id = _envelope(detail)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"),
                   (b"x-request-id", request_id.encode()), (b"x-content-type-options", b"nosniff"),
                   (b"cache-control", b"no-store")]
        for event in (h11.Response(status_code=431, headers=headers, reason=b"Request Header Fields Too Large"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(conn.send(event) or b"")
        self.transport.close()


def bounded_protocol(max_field: int, max_total: int, max_count: int) -> type[BoundedH11Protocol]:
    """The protocol class for uvicorn's `http=` with these limits."""
    limits = HeaderLimits(max_field=max_field, max_total=max_total, max_count=max_count)
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"limits": limits})
