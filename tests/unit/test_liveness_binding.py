"""The caller a liveness challenge was issued to is part of what its signature covers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.liveness_challenges import new_challenge, signature_valid

KEY = "k" * 40


def test_a_challenge_is_issued_to_one_caller_and_signed_with_it():
    ch = new_challenge(KEY, datetime.now(UTC), timedelta(seconds=120), "user:6741f0c2a1b2c3d4e5f60720")
    assert signature_valid(KEY, ch) and ch.issued_to("user:6741f0c2a1b2c3d4e5f60720")
    assert not ch.issued_to("api_key:6741f0c2a1b2c3d4e5f60720") and not ch.issued_to("user:6741F0C2A1B2C3D4E5F60720")
    assert not signature_valid(KEY, replace(ch, caller="user:000000000000000000000000"))
    assert not signature_valid(KEY, replace(ch, caller=""))


def test_a_challenge_without_a_caller_is_nobody_s():
    ch = new_challenge(KEY, datetime.now(UTC), timedelta(seconds=120), "")
    assert not ch.issued_to("") and not ch.issued_to("user:x")
