"""Request ids and the access log, body limits and security headers, as plain ASGI middleware
(no per-request task overhead)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

from fastapi import params
from starlette.exceptions import HTTPException

from app.api.deps import is_trusted_proxy
from app.api.errors import envelope
from app.logging_setup import request_id_var
from app.metrics import observe_request

log = logging.getLogger("kycflow.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: Any, *, quiet: tuple[str, ...] = ()) -> None:
        self.app = app
        self.quiet = quiet  # path prefixes logged at DEBUG: health probes, every few seconds

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
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
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
        except asyncio.CancelledError:
            if not started:  # cut at the end of SHUTDOWN_GRACE_SECONDS: say so, so the client retries elsewhere
                await envelope(503, "shutting_down", "The service is restarting; send the request again.",
                               headers={"Retry-After": "1"})(scope, receive, send_with_id)
            raise
        finally:
            elapsed = time.perf_counter() - start
            observe_request(scope, status, elapsed)
            # Path only: query strings may carry secrets; bodies are never logged.
            log.log(logging.DEBUG if scope["path"].startswith(self.quiet) else logging.INFO, "request", extra={
                "request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": (scope.get("client") or ("", 0))[0],
            })
            request_id_var.reset(token)


class _BodyTooLarge(HTTPException):
    # An HTTPException so FastAPI's body parsing lets it through instead of turning it into a 400.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))
        self.max_bytes = max_bytes


def _too_large(max_bytes: int) -> str:
    size = f"{max_bytes / 1048576:.0f} MB" if max_bytes >= 1048576 else f"{max_bytes // 1024} KB"
    return f"The request body is larger than {size}, the limit of this route."


# Which limit a route gets follows from the route itself (its method and path template, as the
# router matched it), never from a path prefix: a JSON route under a path whose POST takes files
# (`PUT /kyc/documents/{id}/corrections`) still gets the JSON limit. A route whose body has a file
# part gets "uploads"; a JSON route that carries files or frames says so with `@body_limit(kind)`.
# Every other route takes a small JSON body.
_BODY_LIMIT = "__kycflow_body_limit__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def body_limit(kind: str) -> Callable[[Endpoint], Endpoint]:
    """Marks a JSON endpoint that carries files or frames ("uploads", "frames", "gateway")."""
    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _BODY_LIMIT, kind)
        return endpoint
    return mark


def _body_params(dependant: Any) -> Iterator[Any]:
    yield from dependant.body_params
    for sub in dependant.dependencies:
        yield from _body_params(sub)


def route_body_kind(route: Any) -> str | None:
    """The large-body kind of a route, or None for the JSON limit."""
    kind = getattr(getattr(route, "endpoint", None), _BODY_LIMIT, None)
    if kind is not None:
        return str(kind)
    dependant = getattr(route, "dependant", None)
    if dependant is not None and any(isinstance(p.field_info, params.File) for p in _body_params(dependant)):
        return "uploads"
    return None


# Long-lived responses to body-less requests (SSE): passed through untouched, so nothing wraps the
# receive() a stream waits on for the client's disconnect for its whole life.
STREAM_ROUTES = ("/events",)


class BodyLimitMiddleware:
    """Refuse request bodies over the route's limit before they are parsed or spooled to disk (413).

    `limits` gives each kind ("uploads", "frames", "gateway") its size in bytes; other routes get
    `default`, so an anonymous caller cannot make `/auth/login` read 80 MB. The route is known once
    the router has matched it (`scope["route"]`), which is before its handler reads the first byte:
    the check runs on that first read."""

    def __init__(self, app: Any, *, default: int, limits: dict[str, int], prefix: str = "") -> None:
        self.app, self.default, self.limits = app, default, limits
        self.streams = frozenset(prefix + path for path in STREAM_ROUTES)
        self._by_route: dict[int, int] = {}  # id(route) -> bytes; routes live as long as the app

    def limit_for(self, route: Any) -> int:
        if route is None:
            return self.default
        limit = self._by_route.get(id(route))
        if limit is None:
            kind = route_body_kind(route)
            limit = self._by_route[id(route)] = self.limits[kind] if kind else self.default
        return limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.streams:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        received, max_bytes = 0, -1

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, max_bytes
            if max_bytes < 0:
                max_bytes = self.limit_for(scope.get("route"))
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _BodyTooLarge(max_bytes)  # refused before a byte of it is read
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:  # chunked bodies have no Content-Length to trust
                raise _BodyTooLarge(max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge as exc:
            await envelope(413, "payload_too_large", _too_large(exc.max_bytes))(scope, receive, send)


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
        self.app, self.api_prefix, self.public, self.proxies = app, api_prefix, public, trusted_proxies
        for proxy in trusted_proxies:  # a malformed TRUSTED_PROXIES entry fails at start, not quietly per request
            ipaddress.ip_network(proxy, strict=False)

    def _over_tls(self, scope: dict[str, Any]) -> bool:
        if scope.get("scheme") == "https":
            return True
        proto = next((v for k, v in scope["headers"] if k == b"x-forwarded-proto"), b"")
        peer = (scope.get("client") or ("",))[0]
        return proto.split(b",")[0].strip().lower() == b"https" and is_trusted_proxy(peer, self.proxies)

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
