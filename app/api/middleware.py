"""Request ids and the access log, as a plain ASGI middleware (no per-request task overhead)."""

from __future__ import annotations

import logging
import re
import time
import uuid
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

        async def send_with_id(message: dict[str, Any]) -> None:
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
        super().__init__(413, f"The request body is larger than {max_bytes / 1048576:.0f} MB.")


class BodyLimitMiddleware:
    """Refuse request bodies over a size before they are parsed or spooled to disk (413)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # chunked bodies have no Content-Length to trust
                raise _BodyTooLarge(self.max_bytes)
            return message  # type: ignore[no-any-return]

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        mb = self.max_bytes / 1048576
        await envelope(413, "payload_too_large", f"The request body is larger than {mb:.0f} MB.")(scope, receive, send)
