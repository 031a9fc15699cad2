"""Request limits as one ASGI middleware: a shared rate limit per caller and route group, and a
per-caller cap on requests in flight to the routes that run a model (`app/api/model_routes.py`:
the route, method and path template, not a path prefix). It runs before routing and body parsing,
so a refused request costs one database update and reads no upload. First of all it reads the
request's one credential, and refuses a request with several (400 `duplicate_credentials`).

The caller is the identity the request's one credential proves (`app/api/credentials.py`, the same
value the route's dependencies read): a live API key (`key:<id>`), or a bearer token with a valid
signature (`user:<sub>`); else the client address (`ip:<address>`, with X-Forwarded-For believed
only from TRUSTED_PROXIES). Credentials that fail here are not refused here: the request is counted
against its address and the route answers 401 as usual."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from app import metrics
from app.api.credentials import credential_of
from app.api.deps import client_ip
from app.api.errors import envelope
from app.api.model_routes import is_model_route
from app.domain.errors import DomainError, InvalidInput, TooManyRequests
from app.domain.rate_limits import group_for
from app.services.request_limits import WindowQuota

log = logging.getLogger("kycflow.limits")


class RateLimitMiddleware:
    def __init__(self, app: Any, *, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] == "http":
            try:  # kept on the scope: the limits below and the route's dependencies read this one value
                credential_of(scope)
            except InvalidInput as exc:
                await envelope(400, exc.code, exc.message)(scope, receive, send)
                return
        if not path.startswith(self.prefix + "/"):
            await self.app(scope, receive, send)
            return
        relative = path[len(self.prefix):]
        group = group_for(relative)
        heavy = group is not None and is_model_route(getattr(scope["app"].state, "model_routes", ()), scope)
        container = scope["app"].state.container
        enabled = container.settings.rate_limits_enabled
        if group is None or not (enabled or heavy):
            await self.app(scope, receive, send)
            return
        subject, per_minute = await self._caller(scope, container)
        quota: WindowQuota | None = None
        if enabled:
            try:
                quota = await container.request_limits.hit(subject, group, per_minute)
            except Exception as exc:  # the database is down: the route answers for itself (fail open)
                log.warning("rate limit not counted", extra={"error": type(exc).__name__})
            if quota is not None and quota.exceeded:
                metrics.RATE_LIMITED.labels(group.value, "rate").inc()
                await self._refuse(TooManyRequests("Too many requests; try again later.", retry_after=quota.retry_after),
                                   quota, scope, receive, send)
                return
        if not heavy:
            await self.app(scope, receive, self._with_headers(send, quota))
            return
        try:
            container.in_flight.acquire(subject)
        except TooManyRequests as exc:
            metrics.RATE_LIMITED.labels(group.value, "in_flight").inc()
            await self._refuse(exc, quota, scope, receive, send)
            return
        try:  # held until the response has been sent, body included
            await self.app(scope, receive, self._with_headers(send, quota))
        finally:
            container.in_flight.release(subject)

    async def _caller(self, scope: dict[str, Any], container: Any) -> tuple[str, int | None]:
        credential = credential_of(scope)  # a request with several was refused in `__call__`
        if credential.api_key:
            try:
                key = await container.api_keys.authenticate(credential.api_key)
            except DomainError:
                key = None
            if key is not None:
                scope.setdefault("state", {})["api_key"] = key  # the route's dependency reuses it
                return f"key:{key.id}", key.rate_limit_per_minute
        if credential.bearer:
            try:  # the token service checks a token's signature once per process, its expiry every time
                return f"user:{container.auth.tokens.decode(credential.bearer, typ='access').sub}", None
            except DomainError:
                pass
        peer = (scope.get("client") or (None,))[0]
        forwarded = dict(scope["headers"]).get(b"x-forwarded-for")
        ip = client_ip(peer, forwarded.decode("latin-1") if forwarded else None, container.settings.trusted_proxies)
        return f"ip:{ip}", None

    @staticmethod
    def _with_headers(send: Any, quota: WindowQuota | None) -> Any:
        if quota is None:
            return send

        async def send_with_quota(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A route with a stricter limit of its own (OTP sends) reports that one.
                if not any(k.lower() == b"x-ratelimit-limit" for k, _ in headers):
                    headers += quota.headers()
                message["headers"] = headers
            await send(message)

        return send_with_quota

    @staticmethod
    async def _refuse(exc: TooManyRequests, quota: WindowQuota | None, scope: dict[str, Any], receive: Any,
                      send: Any) -> None:
        headers = {"Retry-After": str(exc.retry_after)}
        if quota is not None:
            headers |= {k.decode(): v.decode() for k, v in quota.headers()}
        await envelope(429, exc.code, exc.message, headers=headers)(scope, receive, send)
