"""Integrator API keys: shown once at creation, stored as a SHA-256 hash, scoped, expiring, revocable.

Using a key costs one read and no write: `last_used_at` is kept in memory and written at most
once per `usage_flush_seconds` per key (and when the service stops), so the stored value may be
that many seconds behind, and a crash loses at most that window of "last used" times."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import secrets
from dataclasses import replace
from datetime import datetime

from app.domain.api_keys import ApiKey, Scope, check_expiry
from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound, Unauthenticated
from app.domain.pages import Page, PageRequest
from app.domain.users import User
from app.repositories.api_keys import ApiKeyRepository
from app.services.audit import AuditService
from app.services.clock import Clock

log = logging.getLogger("kycflow.api_keys")


def _hash(secret: str) -> str:
    # Keys are long random strings, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, repo: ApiKeyRepository, audit: AuditService, clock: Clock, *,
                 usage_flush_seconds: float = 60.0) -> None:
        self.repo, self.audit, self.clock = repo, audit, clock
        self.usage_flush_seconds = usage_flush_seconds
        self._pending: dict[str, datetime] = {}  # key id -> latest use not yet written
        self._flusher: asyncio.Task[None] | None = None

    async def create(self, name: str, actor: User, client: ClientInfo, *, scopes: frozenset[Scope],
                     expires_at: datetime | None = None, rate_limit_per_minute: int | None = None,
                     ) -> tuple[ApiKey, str]:
        now = self.clock.now()
        check_expiry(expires_at, now)
        if expires_at is not None:  # what MongoDB keeps: milliseconds
            expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
        prefix = secrets.token_hex(4)
        secret = f"kf_{prefix}_{secrets.token_urlsafe(32)}"
        key = await self.repo.add(name=name, prefix=prefix, key_hash=_hash(secret), created_by=actor.id, now=now,
                                  scopes=scopes, expires_at=expires_at, rate_limit_per_minute=rate_limit_per_minute)
        await self.audit.record(AuditAction.API_KEY_CREATED, user_id=None, actor=actor, client=client,
                                key_id=key.id, name=name, scopes=sorted(scopes))
        return key, secret

    async def list(self, *, page: PageRequest) -> Page[ApiKey]:
        # This instance's uses not yet written show already (other instances' may lag by the flush period).
        return (await self.repo.search(page=page)).map(self._with_pending)

    def _with_pending(self, key: ApiKey) -> ApiKey:
        used = self._pending.get(key.id)
        if used is None or (key.last_used_at is not None and key.last_used_at >= used):
            return key
        return replace(key, last_used_at=used)

    async def revoke(self, key_id: str, actor: User, client: ClientInfo) -> ApiKey:
        key = await self.repo.revoke(key_id, self.clock.now())
        if key is None:
            raise NotFound("No active API key with this id.", code="api_key_not_found")
        await self.audit.record(AuditAction.API_KEY_REVOKED, user_id=None, actor=actor, client=client, key_id=key.id)
        return key

    async def authenticate(self, secret: str) -> ApiKey:
        """The live key for this secret; a revoked or expired key fails at once (read every time,
        never cached, so a revocation on one instance holds on all of them)."""
        now = self.clock.now()
        key = await self.repo.by_hash(_hash(secret))
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("The API key is invalid or revoked.", code="invalid_api_key")
        if key.is_expired(now):
            raise Unauthenticated("The API key has expired.", code="api_key_expired")
        self._touch(key.id, now)
        return key

    def _touch(self, key_id: str, now: datetime) -> None:
        self._pending[key_id] = now
        if self._flusher is None or self._flusher.done():
            # A fresh context: the batched write belongs to no one request (logs and command counts).
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later(), context=contextvars.Context())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.usage_flush_seconds)
        await self.flush_usage()

    async def flush_usage(self) -> None:
        """Write the pending `last_used_at` times in one batch (nothing when none is pending)."""
        pending, self._pending = self._pending, {}
        try:
            await self.repo.record_use(pending)
        except Exception:  # a lost "last used" time is not worth a crash; the next use schedules again
            log.warning("could not record API key use", exc_info=True)

    async def close(self) -> None:
        """At shutdown: stop the timer and write what is pending."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush_usage()
