"""Users, roles and the rules about identifiers and passwords. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from app.domain.errors import AccountNotVerified, AccountSuspended, InvalidIdentifier, WeakPassword


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
    RESUBMISSION_REQUESTED = "RESUBMISSION_REQUESTED"  # the case was sent back for something to redo
    RE_KYC_DUE = "RE_KYC_DUE"  # the approval ran out (periodic re-KYC): renew in the approved case


# Admin can do all an auditor can; an auditor all a signed-in user can read.
_CUSTOMER = ("profile:read", "profile:write", "kyc:submit", "kyc:read_own", "loans:apply", "loans:read_own")
_AUDITOR = ("kyc:review", "kyc:read_any", "audit:read", "users:read", "loans:read_any", "stats:read", "gateway:use")
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
        raise InvalidIdentifier("Enter a valid email address.")
    return value


_INDIAN_MOBILE = re.compile(r"^[6-9]\d{9}$")  # the 10 digits Indians type for their own mobile


def normalize_phone(value: str) -> str:
    """E.164; a bare 10-digit Indian mobile number (first digit 6-9) is read as +91."""
    value = re.sub(r"[\s\-()]", "", value.strip())
    if _INDIAN_MOBILE.match(value):
        value = "+91" + value
    if not _E164.match(value):
        raise InvalidIdentifier("Phone numbers must be in E.164 form, e.g. +919876543210 (or a 10-digit Indian "
                                "mobile number, read as +91).")
    return value


def is_phone(identifier: str) -> bool:
    """No `@` and only digits, spaces, dashes, brackets and a leading `+`: a phone number."""
    value = identifier.strip()
    return "@" not in value and bool(value) and bool(re.fullmatch(r"\+?[\d\s\-()]+", value))


def identifier_kind(identifier: str) -> str:
    """`phone` or `email` for a normalised identifier."""
    return "phone" if identifier.startswith("+") else "email"


def normalize_identifier(identifier: str) -> str:
    """An email (lower-cased) or an E.164 phone number (a 10-digit Indian mobile counts as +91)."""
    if is_phone(identifier):
        return normalize_phone(identifier)
    if "@" not in identifier:
        raise InvalidIdentifier("Enter an email address or a phone number in E.164 form, e.g. +919876543210.")
    return normalize_email(identifier)


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
        raise WeakPassword(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 128:
        raise WeakPassword("Password must be at most 128 characters.")
    lowered = password.lower()
    for ident in (email, phone, (email or "").split("@")[0] or None):
        if ident and lowered == ident.lower():
            raise WeakPassword("Password must not be your email or phone number.")
    if lowered in COMMON_PASSWORDS:
        raise WeakPassword("This password is too common; choose another.")


class FinancialDetails(TypedDict):
    """Money as exact `Decimal` rupees (stored as `Decimal128`)."""

    monthly_income: Decimal
    monthly_expenses: Decimal
    existing_emi: Decimal
    credit_score: NotRequired[int | None]


class EmploymentDetails(TypedDict):
    employment_type: str  # salaried, self_employed, business
    employer_name: str
    designation: str
    years_in_current_job: float
    total_experience_years: float


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
    kyc_score: int | None = None  # overall score of the latest checked KYC case
    kyc_level: str | None = None  # the verification level KYC approved (None unless APPROVED)
    updated_at: datetime | None = None  # any change to the record (a password reset too)
    kyc_status_updated_at: datetime | None = None  # only when `kyc_status` changed
    kyc_valid_until: datetime | None = None  # when the last approval runs out (periodic re-KYC)
    profile: dict[str, Any] = field(default_factory=dict)
    profile_risk: dict[str, Any] | None = None
    financial_details: FinancialDetails | None = None
    employment_details: EmploymentDetails | None = None
    # Name and date of birth as the approved KYC case verified them ({"name", "dob", "verified_at"}).
    verified_identity: dict[str, Any] | None = None
    # Kinds ("email", "phone") whose own code was verified; the other one is only a claim.
    verified: frozenset[str] = frozenset()

    @property
    def kyc_status_changed_at(self) -> datetime:
        """When the KYC status last changed; a record stored before this was tracked has kept its
        status since it was created (nothing changed it before KYC cases existed)."""
        return self.kyc_status_updated_at or self.created_at

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def primary_identifier(self) -> str:
        """The identifier registered first: email when given, else phone."""
        return self.email or self.phone or ""

    def is_verified(self, identifier: str) -> bool:
        kind = identifier_kind(identifier)
        return kind in self.verified and getattr(self, kind) == identifier

    def can_use(self, identifier: str) -> bool:
        """Whether `identifier` may sign in, ask for codes or reset the password: only once its own
        code was verified. A pending account's primary counts too (its code activates the account)."""
        return self.is_verified(identifier) or (
            self.status == UserStatus.PENDING_VERIFICATION and identifier == self.primary_identifier)

    def unverified_claim(self, identifier: str) -> bool:
        """`identifier` is this account's secondary identifier still waiting for its own code."""
        return getattr(self, identifier_kind(identifier)) == identifier and not self.can_use(identifier)

    def ensure_can_sign_in(self) -> None:
        if self.status == UserStatus.SUSPENDED:
            raise AccountSuspended()
        if self.status == UserStatus.PENDING_VERIFICATION:
            raise AccountNotVerified()

    @property
    def identity(self) -> dict[str, Any]:
        """Name and date of birth to rely on: as the approved KYC case verified them (pinned at
        approval); before approval, as the profile says."""
        if self.kyc_status == KycStatus.APPROVED and self.verified_identity is not None:
            return self.verified_identity
        return {"name": self.name, "dob": self.profile.get("dob")}

    def can(self, permission: str) -> bool:
        return role_can(self.role, permission)
