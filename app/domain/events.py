"""Domain events: one outbox (collection `events`) feeds webhook deliveries and the live stream. No I/O.

An event is written in the same step (transaction) as the state change it reports, so a crash
between "state changed" and "event sent" loses nothing. Its `data` carries ids, statuses, masked
document numbers and amounts, never a clear document number (`safe_payload` refuses one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any


class EventType(StrEnum):
    KYC_SUBMITTED = "kyc.submitted"
    KYC_CHECKS_COMPLETED = "kyc.checks_completed"
    KYC_APPROVED = "kyc.approved"
    KYC_REJECTED = "kyc.rejected"
    KYC_RESUBMISSION_REQUESTED = "kyc.resubmission_requested"
    KYC_RESUBMITTED = "kyc.resubmitted"
    KYC_EXPIRING = "kyc.expiring"  # periodic re-KYC: the notice ahead (KYC_RENEWAL_NOTICE_DAYS)
    KYC_EXPIRED = "kyc.expired"  # the approval ran out: RE_KYC_DUE, a renewal round opened
    LOAN_APPLIED = "loan.applied"
    LOAN_APPROVED = "loan.approved"
    LOAN_REJECTED = "loan.rejected"
    LOAN_KFS_ACCEPTED = "loan.kfs_accepted"  # the borrower accepted the Key Fact Statement (needed to disburse)
    LOAN_DISBURSED = "loan.disbursed"
    LOAN_REPAYMENT_RECEIVED = "loan.repayment_received"
    LOAN_CLOSED = "loan.closed"
    LOAN_PREPAID = "loan.prepaid"  # part of the principal paid ahead; the schedule rebuilt
    LOAN_COOLING_OFF_EXIT = "loan.cooling_off_exit"  # the borrower left within the cooling-off period (then loan.closed)
    LOAN_OVERDUE = "loan.overdue"  # an instalment went unpaid past its due date (the daily review)
    LOAN_CLASSIFIED = "loan.classified"  # days-past-due class changed: CURRENT, SMA_0..2, NPA
    GRIEVANCE_OPENED = "grievance.opened"
    GRIEVANCE_RESPONDED = "grievance.responded"
    GRIEVANCE_CLOSED = "grievance.closed"
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled"  # to admins (`webhooks:manage`), as Svix's operational hook


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
STAFF, ADMINS = "staff", "admins"
# What the review queue shows: a case arrives, its checks finish, it is decided (and leaves the queue).
STAFF_EVENTS = frozenset({EventType.KYC_SUBMITTED, EventType.KYC_CHECKS_COMPLETED, EventType.KYC_APPROVED,
                          EventType.KYC_REJECTED, EventType.KYC_RESUBMISSION_REQUESTED, EventType.KYC_RESUBMITTED})
# Wire-visible job kind: the fan-out of one event to the webhook endpoints subscribed to it.
WEBHOOK_FANOUT_JOB = "webhook_fanout"


def user_audience(user_id: str) -> str:
    return f"user:{user_id}"


def audiences_for(event_type: EventType, user_id: str) -> tuple[str, ...]:
    """Who may see an event live: the customer it is about, and staff for the review-queue events."""
    if event_type is EventType.WEBHOOK_ENDPOINT_DISABLED:
        return (ADMINS,)
    return (user_audience(user_id), STAFF) if event_type in STAFF_EVENTS else (user_audience(user_id),)


def viewer_audiences(user_id: str, *, staff: bool, admin: bool = False) -> frozenset[str]:
    return frozenset({user_audience(user_id), *([STAFF] if staff else []), *([ADMINS] if admin else [])})


@dataclass(frozen=True)
class Event:
    id: str  # ordered by creation (see EventRepository.new_id): the SSE id and the webhook-id
    type: EventType
    user_id: str
    data: dict[str, Any]
    created_at: datetime
    audiences: tuple[str, ...]

    def envelope(self) -> dict[str, Any]:
        """The body of a webhook delivery and of an SSE `data:` line (Standard Webhooks' shape)."""
        return {"type": self.type.value, "timestamp": iso_z(self.created_at), "data": self.data}


def iso_z(value: datetime) -> str:
    if value.tzinfo is None:  # the driver returns naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UnsafeEventPayload(ValueError):
    """A defect, not a refusal: code tried to publish a clear document number or an unserialisable value."""


# A clear Aadhaar (12 digits, spaced or not), a PAN, a passport number. Masked numbers (XXXX XXXX 1234)
# and ids (24 lowercase hex characters) do not match.
_CLEAR_NUMBER = re.compile(r"\b(?:\d{4}[ -]?\d{4}[ -]?\d{4}|[A-Z]{5}\d{4}[A-Z]|[A-Z]\d{7})\b")


def safe_payload(data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as JSON-ready values (amounts as exact decimal strings, instants as ISO 8601 `Z`),
    refusing anything that looks like a clear document number."""
    return {str(k): _safe(v, str(k)) for k, v in data.items()}


def _safe(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        raise UnsafeEventPayload(f"{where}: amounts are Decimal, never float")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if _CLEAR_NUMBER.search(value):
            raise UnsafeEventPayload(f"{where}: looks like a clear document number; publish it masked")
        return value
    if isinstance(value, Mapping):
        return {str(k): _safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v, f"{where}[]") for v in value]
    raise UnsafeEventPayload(f"{where}: {type(value).__name__} is not an event value")
