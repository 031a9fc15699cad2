"""Pure rules: identifiers, passwords, OTP checks, sessions, profile risk, settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.config import Settings
from app.domain.errors import InvalidInput
from app.domain.otp import Otp, OtpPurpose, generate_code, hash_code
from app.domain.profile import is_profile_complete, profile_risk_score
from app.domain.sessions import Session
from app.domain.users import PERMISSIONS, Role, User, UserStatus, check_password_policy, normalize_identifier

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("raw, expected", [
    (" Asha@Example.COM ", "asha@example.com"), ("+91 98765-43210", "+919876543210"), ("+14155550100", "+14155550100"),
])
def test_identifiers_are_normalised(raw, expected):
    assert normalize_identifier(raw) == expected


@pytest.mark.parametrize("raw", ["asha", "asha@", "@example.com", "+0123", "+91abc", "a@b.c"])
def test_bad_identifiers(raw):
    with pytest.raises(InvalidInput):
        normalize_identifier(raw)


@pytest.mark.parametrize("password", ["short", "password123", "QWERTYUIOP", "asha.rao99@example.com", "x" * 129])
def test_password_policy_refuses(password):
    with pytest.raises(InvalidInput):
        check_password_policy(password, email="asha.rao99@example.com")


def test_password_policy_accepts_a_long_unusual_one():
    check_password_policy("tangerine-harbour-42", email="asha@example.com")


def test_otp_codes_are_six_digits_and_checked_in_constant_time():
    codes = {generate_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    otp = Otp(id="1", user_id="u", purpose=OtpPurpose.VERIFY, code_hash=hash_code("k", "u", "verify", "123456"),
              expires_at=NOW + timedelta(minutes=10), attempts=0, max_attempts=5)
    assert otp.matches("k", "123456") and not otp.matches("k", "123457")
    assert not otp.matches("other-key", "123456")
    otp.ensure_usable(NOW)
    with pytest.raises(InvalidInput, match="expired"):
        otp.ensure_usable(NOW + timedelta(minutes=10))
    otp.attempts = 5
    assert otp.tries_left == 0
    with pytest.raises(InvalidInput, match="Too many"):
        otp.ensure_usable(NOW)


def test_session_activity():
    s = Session(id="s", user_id="u", refresh_jti="j", created_at=NOW, expires_at=NOW + timedelta(days=1))
    assert s.is_active(NOW) and not s.is_active(NOW + timedelta(days=1))
    s.revoked_at = NOW
    assert not s.is_active(NOW)


def test_admin_has_auditor_powers():
    admin = User(id="1", name="A", role=Role.ADMIN, status=UserStatus.ACTIVE, password_hash="", created_at=NOW)
    assert all(admin.can(p) for p in PERMISSIONS[Role.AUDITOR]) and admin.is_staff


ADDRESS = {"line1": "1 Road", "city": "Pune", "state": "MH", "pincode": "411001"}


def test_profile_risk_scorecard():
    profile = {"dob": "2006-06-01", "gender": "male", "marital_status": "single", "family_size": 5,
               "working_members": 0, "children": 0, "current_address": ADDRESS, "permanent_address": ADDRESS}
    assert is_profile_complete(profile) and not is_profile_complete({**profile, "dob": None})
    score, level, factors = profile_risk_score(profile, date(2026, 1, 1))
    assert factors == {"age": 20, "dependants": 32, "no_earner": 25, "children": 0, "address_mismatch": 0}
    assert (score, level) == (77, "High")
    settled = {**profile, "dob": "1985-01-01", "family_size": 2, "working_members": 2}
    assert profile_risk_score(settled, date(2026, 1, 1))[:2] == (0, "Low")


def test_jwt_secret_is_generated_once_in_development_and_required_in_production(tmp_path):
    dev = Settings(data_dir=tmp_path, jwt_secret=None, _env_file=None)
    first = dev.resolve_jwt_secret()
    assert len(first) > 40 and Settings(data_dir=tmp_path, _env_file=None).resolve_jwt_secret() == first
    prod = Settings(data_dir=tmp_path / "p", environment="production", jwt_secret=None, _env_file=None)
    with pytest.raises(RuntimeError, match="JWT_SECRET"):
        prod.check_startup()
    with pytest.raises(RuntimeError, match="MONGODB_URI"):
        Settings(environment="production", jwt_secret="s" * 40, _env_file=None).check_startup()
