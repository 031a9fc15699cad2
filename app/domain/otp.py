"""One-time passwords: 6 digits from `secrets`, stored only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.errors import OtpExhausted, OtpExpired


class OtpPurpose(StrEnum):
    VERIFY = "verify"  # activates a pending account through its primary identifier
    LOGIN = "login"
    RESET = "reset"
    CONFIRM = "confirm"  # a signed-in user proves they own their second identifier


def generate_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_code(key: str, user_id: str, purpose: str, code: str) -> str:
    # Keyed: six digits are trivial to brute-force from a plain hash if the table leaks.
    return hmac.new(key.encode(), f"{user_id}:{purpose}:{code}".encode(), hashlib.sha256).hexdigest()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def decoy_hash() -> str:
    """A stored hash no code can match (not 64 hex digits): for identifiers with no account."""
    return "decoy:" + secrets.token_hex(16)


@dataclass
class Otp:
    id: str
    user_id: str | None  # None for a decoy
    purpose: OtpPurpose
    code_hash: str
    expires_at: datetime
    attempts: int
    max_attempts: int
    identifier: str | None = None  # where the code was sent

    @property
    def is_decoy(self) -> bool:
        return self.user_id is None

    def ensure_usable(self, now: datetime) -> None:
        """Expiry is checked here, never left to the TTL sweep."""
        if now >= self.expires_at:
            raise OtpExpired("This code has expired; ask for a new one.")
        if self.attempts >= self.max_attempts:
            raise OtpExhausted("Too many wrong codes; ask for a new one.")

    def matches(self, key: str, code: str) -> bool:
        expected = hash_code(key, self.user_id or "", self.purpose, code)  # computed for decoys too: same work
        return hmac.compare_digest(self.code_hash, expected) and not self.is_decoy

    @property
    def tries_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)
