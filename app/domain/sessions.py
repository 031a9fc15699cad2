"""Sign-in sessions: one per login, holding the one refresh token still usable (API), or the
hash of the staff console's cookie secret (console)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Session:
    id: str
    user_id: str
    refresh_jti: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    kind: str = "api"  # "console": the staff console's cookie session, never reachable with a token
    secret_hash: str | None = None  # console: SHA-256 of the cookie's secret
    last_seen_at: datetime | None = None  # console: for the idle timeout

    def is_active(self, now: datetime) -> bool:
        # Expiry is checked here, never left to the TTL sweep.
        return self.revoked_at is None and now < self.expires_at

    def idle_for(self, now: datetime) -> timedelta:
        return now - (self.last_seen_at or self.created_at)
