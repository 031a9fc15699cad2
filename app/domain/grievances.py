"""Grievances about a loan, on the clock the RBI sets. No I/O.

A regulated lender must resolve a complaint within 30 days; one still unresolved after that may be
taken to the RBI Ombudsman (Integrated Ombudsman Scheme 2021) through the RBI's Complaint Management
System, and the borrower must be told so. Here "resolved" is closed by staff: a reply alone leaves
the grievance open, since the borrower may not be satisfied with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.errors import Conflict, NotFound

RESOLUTION_DAYS = 30
OMBUDSMAN = ("RBI Ombudsman (Reserve Bank - Integrated Ombudsman Scheme, 2021)", "https://cms.rbi.org.in")


class GrievanceNotFound(NotFound):
    """No such grievance."""

    code = "grievance_not_found"


class GrievanceClosed(Conflict):
    """The grievance is closed."""

    code = "grievance_closed"


class GrievanceCategory(StrEnum):
    REPAYMENT = "repayment"
    CHARGES = "charges"
    INTEREST = "interest"
    DISBURSAL = "disbursal"
    RECOVERY_CONDUCT = "recovery_conduct"
    DISCLOSURE = "disclosure"  # the KFS, the terms or what was told
    SERVICE = "service"
    OTHER = "other"


class GrievanceStatus(StrEnum):
    OPEN = "OPEN"
    RESPONDED = "RESPONDED"  # staff replied; still unresolved until closed
    CLOSED = "CLOSED"


UNRESOLVED = (GrievanceStatus.OPEN, GrievanceStatus.RESPONDED)


@dataclass(frozen=True, slots=True)
class Reply:
    message: str
    at: datetime
    by: str
    closing: bool = False


@dataclass(frozen=True, slots=True)
class Grievance:
    id: str
    user_id: str
    loan_id: str
    category: GrievanceCategory
    text: str
    status: GrievanceStatus
    opened_at: datetime
    replies: tuple[Reply, ...] = ()
    closed_at: datetime | None = None
    rev: int = 0

    @classmethod
    def open(cls, *, user_id: str, loan_id: str, category: GrievanceCategory, text: str, now: datetime) -> Grievance:
        return cls("", user_id, loan_id, category, text, GrievanceStatus.OPEN, now)

    @property
    def due_at(self) -> datetime:
        return self.opened_at + timedelta(days=RESOLUTION_DAYS)

    def days_open(self, now: datetime) -> int:
        """Whole days from opening to closing (to `now` while unresolved)."""
        return ((self.closed_at or now) - self.opened_at).days

    def escalation_available(self, now: datetime) -> bool:
        """Unresolved past the 30 days: the borrower may go to the RBI Ombudsman."""
        return self.status in UNRESOLVED and now > self.due_at

    def reply(self, message: str, *, by: str, now: datetime, close: bool = False) -> Grievance:
        if self.status == GrievanceStatus.CLOSED:
            raise GrievanceClosed(current=self.status.value)
        return replace(self, status=GrievanceStatus.CLOSED if close else GrievanceStatus.RESPONDED,
                       replies=(*self.replies, Reply(message, now, by, close)),
                       closed_at=now if close else None)
