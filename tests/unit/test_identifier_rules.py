"""Pure identifier rules: what is read as a phone, which identifiers an account may use, decoy codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import InvalidIdentifier
from app.domain.otp import Otp, OtpPurpose, decoy_hash, hash_code
from app.domain.users import Role, User, UserStatus, normalize_identifier

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("raw, expected", [
    ("9876543210", "+919876543210"), ("98765 43210", "+919876543210"), ("(987) 654-3210", "+919876543210"),
    ("+14155550100", "+14155550100"),
])
def test_a_ten_digit_indian_mobile_is_read_as_plus_91(raw, expected):
    assert normalize_identifier(raw) == expected


@pytest.mark.parametrize("raw", ["5876543210", "98765", "0987654321", "asha.example.com", "+"])
def test_what_is_refused_says_what_is_accepted(raw):
    with pytest.raises(InvalidIdentifier) as info:
        normalize_identifier(raw)
    assert "+919876543210" in info.value.message


def _user(status: UserStatus, verified: frozenset[str]) -> User:
    return User(id="u", name="A", role=Role.CUSTOMER, status=status, password_hash="x", created_at=NOW,
                email="a@example.com", phone="+919876543210", verified=verified)


@pytest.mark.parametrize("status, verified, email_ok, phone_ok", [
    (UserStatus.PENDING_VERIFICATION, frozenset(), True, False),  # the primary activates the account
    (UserStatus.ACTIVE, frozenset({"email"}), True, False),  # the phone is still only a claim
    (UserStatus.ACTIVE, frozenset({"email", "phone"}), True, True),
])
def test_only_verified_identifiers_are_usable(status, verified, email_ok, phone_ok):
    user = _user(status, verified)
    assert (user.can_use("a@example.com"), user.can_use("+919876543210")) == (email_ok, phone_ok)
    assert user.unverified_claim("+919876543210") is not phone_ok
    assert not user.can_use("+919999999999")


def test_a_decoy_matches_no_code():
    otp = Otp(id="1", user_id=None, purpose=OtpPurpose.RESET, code_hash=decoy_hash(),
              expires_at=NOW + timedelta(minutes=10), attempts=0, max_attempts=5)
    assert not any(otp.matches("k", f"{c:06d}") for c in range(0, 1_000_000, 997))
    # Even a hash of a real code does not make a decoy match: it has no account.
    otp.code_hash = hash_code("k", "", "reset", "123456")
    assert not otp.matches("k", "123456")
