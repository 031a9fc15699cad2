"""Liveness challenges: two random actions, HMAC-signed, short-lived, usable once, and only by the
caller they were issued to (a user or an API key), so one caller cannot spend or answer another's."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

ACTIONS = ("blink", "turn_left", "turn_right")
QUESTIONS = {"blink": "blink eyes", "turn_left": "turn face left", "turn_right": "turn face right"}
INSTRUCTIONS = {"blink": "Blink your eyes once", "turn_left": "Turn your face to the left",
                "turn_right": "Turn your face to the right"}


@dataclass
class Challenge:
    id: str
    actions: list[str]
    nonce: str
    created_at: datetime
    expires_at: datetime
    signature: str
    caller: str = ""  # "user:<id>" or "api_key:<id>"; covered by the signature
    used_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def issued_to(self, caller: str) -> bool:
        return bool(self.caller) and hmac.compare_digest(self.caller.encode(), caller.encode())


def sign(key: str, challenge_id: str, actions: list[str], nonce: str, expires_at: datetime, caller: str) -> str:
    payload = f"{challenge_id}|{','.join(actions)}|{nonce}|{int(expires_at.timestamp())}|{caller}".encode()
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def new_challenge(key: str, now: datetime, ttl: timedelta, caller: str) -> Challenge:
    """Two different actions in random order (turning both ways is allowed: left then right)."""
    rng = secrets.SystemRandom()
    actions = rng.sample(ACTIONS, 2)
    challenge_id, nonce = secrets.token_hex(16), secrets.token_hex(8)
    expires_at = now + ttl
    return Challenge(id=challenge_id, actions=actions, nonce=nonce, created_at=now, expires_at=expires_at,
                     signature=sign(key, challenge_id, actions, nonce, expires_at, caller), caller=caller)


def signature_valid(key: str, challenge: Challenge) -> bool:
    expected = sign(key, challenge.id, challenge.actions, challenge.nonce, challenge.expires_at, challenge.caller)
    return hmac.compare_digest(expected, challenge.signature)
