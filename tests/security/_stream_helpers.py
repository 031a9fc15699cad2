"""A `GET /events` reader that drives the ASGI app directly: httpx's ASGITransport hands back a
response only once the app has finished it, and these tests must see frames while the stream runs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import Api


@dataclass
class LiveStream:
    app: Any
    token: str
    status: int | None = None
    chunks: list[bytes] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    _gone: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def open(cls, api: Api, token: str) -> LiveStream:
        app = api.client._transport.app  # type: ignore[attr-defined]  # the app behind the test client
        stream = cls(app, token)
        stream.task = asyncio.get_running_loop().create_task(stream._run())
        return stream

    async def _run(self) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/api/v1/events", "raw_path": b"/api/v1/events", "root_path": "",
                 "query_string": b"", "server": ("testserver", 80), "client": ("203.0.113.7", 5555),
                 "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {self.token}".encode())]}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()

    def event_ids(self) -> list[str]:
        return [line[4:] for line in self.text.splitlines() if line.startswith("id: ")]

    @property
    def ended(self) -> bool:
        return self.task is not None and self.task.done()

    async def close(self) -> None:
        self._gone.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 5)
