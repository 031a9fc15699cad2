"""Integrator API keys: what the service knows about a key (never its secret), its scopes and expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.errors import Forbidden, RuleViolation


class Scope(StrEnum):
    VERIFY = "verify"  # POST /kyc/verify
    OCR = "ocr"  # POST /ocr/extract
    LIVENESS = "liveness"  # /liveness/*
    GATEWAY = "gateway"  # /gateway/{service}/{path}


# Keys stored before scopes existed could call every verification route: they keep doing so,
# but never reach the gateway (a proxy into internal services must be granted explicitly).
LEGACY_SCOPES: frozenset[Scope] = frozenset({Scope.VERIFY, Scope.OCR, Scope.LIVENESS})
MAX_KEY_LIFETIME = timedelta(days=730)


class InsufficientScope(Forbidden):
    """The API key was not granted the scope this route needs."""

    code = "insufficient_scope"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    scopes: frozenset[Scope] = LEGACY_SCOPES
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = None  # None: the route group's limit from settings

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise InsufficientScope(f"This API key lacks the '{scope}' scope this route needs.", scope=scope.value)


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    """A new key's expiry: in the future, and within MAX_KEY_LIFETIME (keys are rotated, not eternal)."""
    if expires_at is None or now < expires_at <= now + MAX_KEY_LIFETIME:
        return
    problem = "must be in the future" if expires_at <= now else f"must be within {MAX_KEY_LIFETIME.days} days"
    raise RuleViolation(f"expires_at {problem}.", code="invalid_expiry",
                        errors=[{"field": "expires_at", "message": problem}])
