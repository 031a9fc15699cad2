"""Request ids and the access log, body limits and security headers, as plain ASGI middleware
(no per-request task overhead)."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from app.api.errors import envelope
from app.logging_setup import request_id_var

log = logging.getLogger("kycflow.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode() for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status, started = 500, False

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answer here rather than in Starlette's outermost handler, so even a 500
            # carries the envelope, the request id header and an access-log line.
            log.exception("unhandled error")
            if started:
                raise
            await envelope(500, "internal_error", "Something went wrong on our side; it has been logged.")(
                scope, receive, send_with_id)
        finally:
            # Path only: query strings may carry secrets; bodies are never logged.
            log.info("request", extra={
                "request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "client_ip": (scope.get("client") or ("", 0))[0],
            })
            request_id_var.reset(token)


class _BodyTooLarge(HTTPException):
    # An HTTPException so FastAPI's body parsing lets it through instead of turning it into a 400.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    size = f"{max_bytes / 1048576:.0f} MB" if max_bytes >= 1048576 else f"{max_bytes // 1024} KB"
    return f"The request body is larger than {size}, the limit of this route."


# The routes that receive files or frames, by path under the API prefix (a route and everything below it).
# Every other route takes a small JSON body: a new upload route must be listed here to accept more.
LARGE_BODY_ROUTES: dict[str, str] = {
    "/kyc/verify": "uploads",
    "/ocr/extract": "uploads",
    "/kyc/documents": "uploads",
    "/kyc/selfie": "uploads",
    "/kyc/upload": "uploads",
    "/liveness": "frames",
    "/gateway": "gateway",  # streamed through, never held: its own (large) limit
}


# Long-lived responses to body-less requests (SSE): passed through untouched, so nothing wraps the
# receive() a stream waits on for the client's disconnect for its whole life.
STREAM_ROUTES = ("/events",)


class BodyLimitMiddleware:
    """Refuse request bodies over the route's limit before they are parsed or spooled to disk (413).

    `limits` names each kind in LARGE_BODY_ROUTES ("uploads", "frames") with its size in bytes;
    unlisted routes get `default`, so an anonymous caller cannot make `/auth/login` read 80 MB."""

    def __init__(self, app: Any, *, default: int, limits: dict[str, int], prefix: str = "") -> None:
        self.app, self.default = app, default
        self.routes = [(prefix + path, limits[kind]) for path, kind in LARGE_BODY_ROUTES.items()]
        self.streams = frozenset(prefix + path for path in STREAM_ROUTES)

    def limit_for(self, path: str) -> int:
        for route, limit in self.routes:
            if path == route or path.startswith(route + "/"):
                return limit
        return self.default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.streams:
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(max_bytes, scope, receive, send)
            return
        received = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:  # chunked bodies have no Content-Length to trust
                raise _BodyTooLarge(max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(max_bytes, scope, receive, send)

    async def _refuse(self, max_bytes: int, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await envelope(413, "payload_too_large", _too_large(max_bytes))(scope, receive, send)


_STATIC_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # nothing here is meant to be framed; /docs and /redoc are top-level pages
    (b"referrer-policy", b"no-referrer"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeadersMiddleware:
    """Browser hardening headers on every response; HSTS only over TLS (directly or via a trusted
    proxy's X-Forwarded-Proto); `no-store` on API answers, which carry tokens and personal data."""

    def __init__(self, app: Any, *, api_prefix: str, trusted_proxies: list[str], public: tuple[str, ...] = ()) -> None:
        self.app, self.api_prefix, self.public = app, api_prefix, public
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def _over_tls(self, scope: dict[str, Any]) -> bool:
        if scope.get("scheme") == "https":
            return True
        proto = next((v for k, v in scope["headers"] if k == b"x-forwarded-proto"), b"")
        peer = (scope.get("client") or ("",))[0]
        if proto.split(b",")[0].strip().lower() != b"https" or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_STATIC_HEADERS)
        if self._over_tls(scope):
            extra.append(_HSTS)
        path = scope["path"]
        no_store = path.startswith(self.api_prefix + "/") and not any(path.startswith(p) for p in self.public)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", [])]
                present = {k.lower() for k, _ in headers}
                headers += [h for h in extra if h[0] not in present]
                if no_store:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"] + [_NO_STORE]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
