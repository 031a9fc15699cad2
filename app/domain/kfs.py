"""The Key Fact Statement's number, validity and acceptance (RBI Master Direction - Key Facts Statement for
Loans & Advances, April 2024). Pure.

**Issues.** A loan's KFS is issued the day it is opened and binds the lender for `validity` working days after
that day, the last one included (Sundays and the configured holidays are not working days). The Direction's
minimum, whatever the setting: 3 working days for a tenor of 7 days or more, 1 below (the same split as the
cooling-off minimum). A loan keeps its product's terms from opening, so an issue that lapses unaccepted is
followed, the next day, by the next issue on the same terms: `KFS-<loan id>-<n>`, stable for its validity and
never reused. Everything is computed from the opening day; nothing is written until the borrower accepts.

**Acceptance.** The borrower accepts the issue they were shown, by its number, within its validity (an
earlier issue: 409 `kfs_expired`; any other number: 409 `kfs_stale`), while the loan is APPLIED or APPROVED;
the acceptance keeps the number, its validity, the time and the caller's address. A disbursal needs it.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from app.domain.errors import Conflict
from app.domain.loans import InvalidTransition, KfsAcceptance, Loan, LoanStatus, cooling_off_minimum


class KfsNotAccepted(Conflict):
    """The borrower has not accepted the Key Fact Statement: the loan cannot be disbursed."""

    code = "kfs_not_accepted"


class KfsExpired(Conflict):
    """This Key Fact Statement's validity has passed: read the loan again and accept the current one."""

    code = "kfs_expired"


class KfsStale(Conflict):
    """This is not the loan's current Key Fact Statement: read the loan again and accept the one shown."""

    code = "kfs_stale"


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    email: str
    phone: str


@dataclass(frozen=True, slots=True)
class KfsTerms:
    """What the settings add to every KFS: its validity, the working-day calendar, the grievance officer and
    the recovery arrangements (whether agents are engaged; the borrower is told before one calls)."""

    validity_working_days: int
    holidays: frozenset[date]
    grievance_officer: Contact
    recovery_agents_used: bool
    recovery_policy: str


@dataclass(frozen=True, slots=True)
class KfsIssue:
    number: str
    issued_on: date
    valid_until: date  # the last working day the terms hold, included
    working_days: int


def working_days_after(day: date, count: int, holidays: Set[date]) -> date:
    """The `count`-th working day after `day` (Sundays and `holidays` skipped)."""
    while count:
        day += timedelta(days=1)
        count -= day.weekday() != 6 and day not in holidays
    return day


def current_issue(loan: Loan, today: date, validity: int, holidays: Set[date]) -> KfsIssue:
    """The issue shown on `today`: the accepted one once accepted, else the one whose validity holds today."""
    if (taken := loan.kfs_acceptance) is not None:
        return KfsIssue(taken.number, taken.issued_on, taken.valid_until, taken.working_days)
    days = max(validity, cooling_off_minimum(loan.tenure_months * 28))  # a month has at least 28 days
    n, issued = 1, loan.created_at.date()
    while (until := working_days_after(issued, days, holidays)) < today:
        n, issued = n + 1, until + timedelta(days=1)
    return KfsIssue(f"KFS-{loan.id}-{n}", issued, until, days)


def accept(loan: Loan, number: str, issue: KfsIssue, *, now: datetime, ip_address: str | None,
           user_agent: str | None) -> Loan:
    """The loan with the borrower's acceptance of `issue` (the current one), or the refusal."""
    if loan.kfs_acceptance is not None and loan.kfs_acceptance.number == number:
        return loan  # accepted already: the same answer again
    if loan.status not in (LoanStatus.APPLIED, LoanStatus.APPROVED):
        raise InvalidTransition(f"The loan is {loan.status.value}; a KFS is accepted before the disbursal.",
                                current=loan.status.value)
    if number != issue.number:
        lapsed = {f"KFS-{loan.id}-{n}" for n in range(1, int(issue.number.rpartition("-")[2]))}
        raise KfsExpired() if number in lapsed and loan.kfs_acceptance is None else KfsStale()
    return replace(loan, kfs_acceptance=KfsAcceptance(number, issue.issued_on, issue.valid_until, issue.working_days,
                                                      now, ip_address, user_agent), updated_at=now)


def ensure_accepted(loan: Loan) -> None:
    if loan.kfs_acceptance is None:
        raise KfsNotAccepted()
