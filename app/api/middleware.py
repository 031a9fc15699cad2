"""Request ids and the access log, as a plain ASGI middleware (no per-request task overhead)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

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
