"""One-time passwords: 6 digits from `secrets`, stored only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import InvalidInput


class OtpPurpose(StrEnum):
    VERIFY = "verify"
    LOGIN = "login"
    RESET = "reset"


def generate_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_code(key: str, user_id: str, purpose: str, code: str) -> str:
    # Keyed: six digits are trivial to brute-force from a plain hash if the table leaks.
    return hmac.new(key.encode(), f"{user_id}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Otp:
    id: str
    user_id: str
    purpose: OtpPurpose
    code_hash: str
    expires_at: datetime
    attempts: int
    max_attempts: int

    def ensure_usable(self, now: datetime) -> None:
        """Expiry is checked here, never left to the TTL sweep."""
        if now >= self.expires_at:
            raise InvalidInput("This code has expired; ask for a new one.", code="otp_expired")
        if self.attempts >= self.max_attempts:
            raise InvalidInput("Too many wrong codes; ask for a new one.", code="otp_exhausted")

    def matches(self, key: str, code: str) -> bool:
        return hmac.compare_digest(self.code_hash, hash_code(key, self.user_id, self.purpose, code))

    @property
    def tries_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)
