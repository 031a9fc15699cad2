"""The HTTP/1.1 protocol `kycflow serve` runs: uvicorn's httptools one (C, llhttp), with the request
head bounded.

httptools alone reads a request head of any size: an 8 MB header was answered 200, and four
connections holding unfinished 64 MB headers grew the process by 290 MB. Here a head is refused with
431 and the connection closed, before any application code runs, when one field is over
`max_field` bytes, the request line and fields together are over `max_total`, or there are more
than `max_count` fields. An unfinished head is cut off once `max_total` bytes of it have arrived, so
a connection never holds more than that plus one read.

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

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class HeaderLimits:
    max_field: int  # one field, name and value
    max_total: int  # the request line and every field
    max_count: int


class _HeadRefused(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers through `send_400_response`."""


def _envelope(detail: str) -> tuple[bytes, str]:
    # The error envelope of every other answer (app/api/errors.py), built here: no app runs for it.
    request_id = uuid.uuid4().hex
    body = {"detail": detail, "error_code": "header_fields_too_large", "status_code": 431,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": request_id}
    return json.dumps(body).encode(), request_id


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering 431 (in the error envelope) where a head is too large."""

    limits = HeaderLimits(max_field=16 * 1024, max_total=64 * 1024, max_count=100)
    head_timeout = 10.0  # seconds a request head may take to arrive; a real client needs milliseconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # from a request's first byte (or the connection's start) to its blank line
        self._head_bytes = self._head_size = self._fields = 0
        self._refusal: str | None = None
        self._head_timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # The first byte of the next head on a kept-alive connection starts its clock; later bytes do not.
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_total and not self.transport.is_closing():
            self._refusal = f"The request's header fields are larger than {self.limits.max_total // 1024} KB."
            self.send_400_response(self._refusal)  # unfinished, and already over: never wait for the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = self._fields = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self.limits.max_count:
            self._refuse(f"The request has more than {self.limits.max_count} header fields.")
        if len(name) + len(value) > self.limits.max_field:
            self._refuse(f"A header field is larger than {self.limits.max_field // 1024} KB.")
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True  # what arrives next is the next request's head
        super().on_message_complete()

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_total:
            self._refuse(f"The request's header fields are larger than {self.limits.max_total // 1024} KB together.")

    def _refuse(self, detail: str) -> None:
        self._refusal = detail
        raise _HeadRefused(detail)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.logger.info("closed a connection whose request head took over %g s", self.head_timeout)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; a head over the limits is a 431.
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self.logger.warning("refused a request head: %s", self._refusal)
        body, request_id = _envelope(self._refusal)
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n", b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body), b"connection: close\r\n",
            b"x-request-id: %s\r\n" % request_id.encode(), b"x-content-type-options: nosniff\r\n",
            b"cache-control: no-store\r\n\r\n", body]))
        self.transport.close()


def bounded_protocol(max_field: int, max_total: int, max_count: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` with these limits."""
    limits = HeaderLimits(max_field=max_field, max_total=max_total, max_count=max_count)
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
