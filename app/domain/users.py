"""Users, roles and the rules about identifiers and passwords. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.domain.errors import Forbidden, InvalidInput


class Role(StrEnum):
    CUSTOMER = "customer"
    AUDITOR = "auditor"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})


class UserStatus(StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class KycStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


# Admin can do all an auditor can; an auditor all a signed-in user can read.
_CUSTOMER = ("profile:read", "profile:write", "kyc:submit", "kyc:read_own", "loans:apply", "loans:read_own")
_AUDITOR = ("kyc:review", "kyc:read_any", "audit:read", "users:read", "loans:read_any", "stats:read")
_ADMIN = ("users:manage", "staff:create", "api_keys:manage", "loans:manage", "loans:disburse", "catalogue:manage",
          "jobs:manage", "webhooks:manage")
# The one table of who may do what: `GET /roles` shows it and route dependencies check it.
PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.CUSTOMER: _CUSTOMER,
    Role.AUDITOR: ("profile:read", "profile:write") + _AUDITOR,
    Role.ADMIN: ("profile:read", "profile:write") + _AUDITOR + _ADMIN,
}
ALL_PERMISSIONS = frozenset(p for perms in PERMISSIONS.values() for p in perms)


def role_can(role: Role, permission: str) -> bool:
    return permission in PERMISSIONS[role]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidInput("Enter a valid email address.", code="invalid_identifier")
    return value


def normalize_phone(value: str) -> str:
    value = re.sub(r"[\s\-()]", "", value.strip())
    if not _E164.match(value):
        raise InvalidInput("Phone numbers must be in E.164 form, e.g. +919876543210.", code="invalid_identifier")
    return value


def is_phone(identifier: str) -> bool:
    return identifier.strip().startswith("+")


def normalize_identifier(identifier: str) -> str:
    """An email (lower-cased) or an E.164 phone number."""
    return normalize_phone(identifier) if is_phone(identifier) else normalize_email(identifier)


COMMON_PASSWORDS = frozenset(
    """password password1 password12 password123 password1234 passw0rd123 1234567890 0123456789
    12345678910 qwertyuiop qwerty12345 qwerty123456 1q2w3e4r5t 1qaz2wsx3edc iloveyou123 letmein123
    welcome123 welcome1234 admin12345 administrator abc1234567 abcdefghij 1111111111 0000000000
    9876543210 changeme123 sunshine123 football123 monkey12345 dragon12345 trustno1234 india12345
    securepass123""".split()
)
MIN_PASSWORD_LENGTH = 10


def check_password_policy(password: str, *, email: str | None = None, phone: str | None = None) -> None:
    """Length >= 10, not the email/phone, not a well-known password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    if len(password) > 128:
        raise InvalidInput("Password must be at most 128 characters.", code="weak_password")
    lowered = password.lower()
    for ident in (email, phone, (email or "").split("@")[0] or None):
        if ident and lowered == ident.lower():
            raise InvalidInput("Password must not be your email or phone number.", code="weak_password")
    if lowered in COMMON_PASSWORDS:
        raise InvalidInput("This password is too common; choose another.", code="weak_password")


@dataclass
class User:
    id: str
    name: str
    role: Role
    status: UserStatus
    password_hash: str
    created_at: datetime
    email: str | None = None
    phone: str | None = None
    kyc_status: KycStatus = KycStatus.PENDING
    risk_level: str | None = None
    updated_at: datetime | None = None
    kyc_updated_at: datetime | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    profile_risk: dict[str, Any] | None = None
    financial_details: dict[str, Any] | None = None
    employment_details: dict[str, Any] | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def primary_identifier(self) -> str:
        return self.email or self.phone or ""

    def ensure_can_sign_in(self) -> None:
        if self.status == UserStatus.SUSPENDED:
            raise Forbidden("This account is suspended.", code="account_suspended")
        if self.status == UserStatus.PENDING_VERIFICATION:
            raise Forbidden("Verify your account with the code we sent first.", code="account_not_verified")

    def can(self, permission: str) -> bool:
        return role_can(self.role, permission)

    def has_role(self, *roles: Role) -> bool:
        # Admin can do all an auditor can.
        return self.role in roles or (self.role == Role.ADMIN and Role.AUDITOR in roles)
