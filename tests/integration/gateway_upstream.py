"""A real HTTP upstream on 127.0.0.1 for the gateway tests: uvicorn in its own thread (its own event
loop), so a slow or dying upstream never blocks the test's loop."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import unquote

import uvicorn

CHUNK = 64 * 1024
# Headers an upstream may send that must not reach the gateway's caller (see `/leaky`).
LEAKY_HEADERS = [
    (b"set-cookie", b"upstream_session=abc; Path=/"), (b"set-cookie2", b"old=1"), (b"server", b"Apache/2.4.1 (Unix)"),
    (b"x-powered-by", b"PHP/5.6"), (b"x-aspnet-version", b"4.0.30319"),
    (b"strict-transport-security", b"max-age=0"), (b"alt-svc", b'h3=":443"; ma=86400'),
    (b"clear-site-data", b'"*"'), (b"x-frame-options", b"ALLOWALL"), (b"x-content-type-options", b"sniff"),
    (b"referrer-policy", b"unsafe-url"), (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-credentials", b"true"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    """Routes: /echo (what arrived: method, path, query, headers, body size and chunk count, body
    kept only when small), /download?size=N (N bytes in 64 KiB chunks), /slow (answers after 3 s),
    /die (starts a chunked answer, then drops the connection), /redirect?to=URL (302), /leaky (LEAKY_HEADERS)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hits: list[str] = []
        self.received: dict[str, Any] = {}
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off",
                                interface="asgi3",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        self.hits.append(path)
        query = scope["query_string"].decode()
        if path.endswith("/echo"):
            size = chunks = 0
            small = b""
            while True:
                message = await receive()
                body = message.get("body", b"")
                if body:
                    size, chunks = size + len(body), chunks + 1
                    if size <= CHUNK:
                        small += body
                if not message.get("more_body"):
                    break
            self.received = {"method": scope["method"], "path": path, "raw_path": scope["raw_path"].decode(),
                             "query": query, "bytes": size, "chunks": chunks, "body": small.decode("latin-1"),
                             "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]]}
            await self._json(send, 201 if scope["method"] == "POST" else 200, self.received,
                             extra=[(b"x-upstream", b"yes"), (b"connection", b"keep-alive, x-hop"),
                                    (b"x-hop", b"dropped"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"),
                                    (b"x-repeated", b"1"), (b"x-repeated", b"2")])
        elif path.endswith("/download"):
            size = int(query.split("=")[1])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream"),
                                    (b"content-length", str(size).encode())]})
            block = b"z" * CHUNK
            sent = 0
            while sent < size:
                part = block[: min(CHUNK, size - sent)]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": sent < size})
        elif path.endswith("/slow"):
            await asyncio.sleep(3)
            await self._json(send, 200, {"late": True})
        elif path.endswith("/die"):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"partial " * 100, "more_body": True})
            raise RuntimeError("upstream died mid-response")  # uvicorn drops the connection
        elif path.endswith("/leaky"):  # what an upstream says about itself and sets for the caller's origin
            await self._json(send, 200, {"leaky": True}, extra=[(b"x-upstream", b"yes"), *LEAKY_HEADERS])
        elif path.endswith("/redirect"):
            target = unquote(query.split("=", 1)[1])
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", target.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
        else:
            await self._json(send, 404, {"path": path})

    @staticmethod
    async def _json(send: Any, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                                *(extra or [])]})
        await send({"type": "http.response.body", "body": data})
