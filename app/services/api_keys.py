"""Integrator API keys: shown once at creation, stored as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets

from app.domain.api_keys import ApiKey
from app.domain.audit import AuditAction, ClientInfo
from app.domain.errors import NotFound, Unauthenticated
from app.domain.users import User
from app.repositories.api_keys import ApiKeyRepository
from app.services.audit import AuditService
from app.services.clock import Clock


def _hash(secret: str) -> str:
    # Keys are long random strings, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, repo: ApiKeyRepository, audit: AuditService, clock: Clock) -> None:
        self.repo, self.audit, self.clock = repo, audit, clock

    async def create(self, name: str, actor: User, client: ClientInfo) -> tuple[ApiKey, str]:
        prefix = secrets.token_hex(4)
        secret = f"kf_{prefix}_{secrets.token_urlsafe(32)}"
        key = await self.repo.add(name=name, prefix=prefix, key_hash=_hash(secret), created_by=actor.id,
                                  now=self.clock.now())
        await self.audit.record(AuditAction.API_KEY_CREATED, user_id=None, actor=actor, client=client,
                                key_id=key.id, name=name)
        return key, secret

    async def list(self, *, page: int = 1, page_size: int = 20) -> tuple[list[ApiKey], int]:
        return await self.repo.list(skip=(page - 1) * page_size, limit=page_size)

    async def revoke(self, key_id: str, actor: User, client: ClientInfo) -> ApiKey:
        key = await self.repo.revoke(key_id, self.clock.now())
        if key is None:
            raise NotFound("No active API key with this id.", code="api_key_not_found")
        await self.audit.record(AuditAction.API_KEY_REVOKED, user_id=None, actor=actor, client=client, key_id=key.id)
        return key

    async def authenticate(self, secret: str) -> ApiKey:
        key = await self.repo.use_active(_hash(secret), self.clock.now())
        if key is None:
            raise Unauthenticated("The API key is invalid or revoked.", code="invalid_api_key")
        return key
