"""Integrator API keys: shown once at creation, stored as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound, Unauthenticated
from app.domain.users import User
from app.repositories.api_keys import ApiKeyRepository
from app.services.audit import AuditService
from app.services.clock import Clock


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _of(doc: dict[str, Any]) -> ApiKey:
    return ApiKey(id=str(doc["_id"]), name=doc["name"], prefix=doc["prefix"], created_at=doc["created_at"],
                  revoked_at=doc.get("revoked_at"), last_used_at=doc.get("last_used_at"))


def _hash(secret: str) -> str:
    # Keys are long random strings, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, repo: ApiKeyRepository, audit: AuditService, clock: Clock) -> None:
        self.repo, self.audit, self.clock = repo, audit, clock

    async def create(self, name: str, actor: User, client: ClientInfo) -> tuple[ApiKey, str]:
        prefix = secrets.token_hex(4)
        secret = f"kf_{prefix}_{secrets.token_urlsafe(32)}"
        doc = await self.repo.add(name=name, prefix=prefix, key_hash=_hash(secret), created_by=actor.id,
                                  now=self.clock.now())
        await self.audit.record(AuditAction.API_KEY_CREATED, user_id=None, actor=actor, client=client,
                                key_id=str(doc["_id"]), name=name)
        return _of(doc), secret

    async def list(self) -> list[ApiKey]:
        return [_of(d) for d in await self.repo.list()]

    async def revoke(self, key_id: str, actor: User, client: ClientInfo) -> ApiKey:
        doc = await self.repo.revoke(key_id, self.clock.now())
        if doc is None:
            raise NotFound("No active API key with this id.", code="api_key_not_found")
        await self.audit.record(AuditAction.API_KEY_REVOKED, user_id=None, actor=actor, client=client, key_id=key_id)
        return _of(doc)

    async def authenticate(self, secret: str) -> ApiKey:
        doc = await self.repo.find_active(_hash(secret))
        if doc is None:
            raise Unauthenticated("The API key is invalid or revoked.", code="invalid_api_key")
        await self.repo.touch(doc["_id"], self.clock.now())
        return _of(doc)
