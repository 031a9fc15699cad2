"""Sign-in sessions: one per login, holding the one refresh token still usable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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

    def is_active(self, now: datetime) -> bool:
        # Expiry is checked here, never left to the TTL sweep.
        return self.revoked_at is None and now < self.expires_at
