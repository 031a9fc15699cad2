"""Periodic re-KYC (RBI Master Direction on KYC, periodic updation): how long an approval holds and what
renewing it asks for. No I/O; app/services/kyc/renewals.py runs the daily job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from app.domain.kyc import LIVENESS, CaseDocument, KycCase, Redo, RiskLevel

# Years an approval holds by its case's risk level: RBI asks for updation at least every 2, 8 and 10 years.
DEFAULT_YEARS: dict[RiskLevel, int] = {RiskLevel.HIGH: 2, RiskLevel.MEDIUM: 8, RiskLevel.LOW: 10}


def add_years(at: datetime, years: int) -> datetime:
    """The same day `years` later; 29 February becomes the 28th, so a period is never a day longer."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def document_expiry(doc: CaseDocument) -> date | None:
    """The earlier of the expiry read and the one the customer entered (what is no real date counts as none)."""
    dates = []
    for value in (doc.fields.get("expiry_date"), doc.corrections.get("expiry_date")):
        try:
            dates.append(date.fromisoformat(str(value)))
        except ValueError:
            pass
    return min(dates, default=None)


@dataclass(frozen=True)
class Validity:
    until: datetime
    notice_at: datetime  # when the customer is told it runs out


@dataclass(frozen=True)
class Renewal:
    years: Mapping[RiskLevel, int] = field(default_factory=lambda: dict(DEFAULT_YEARS))
    notice_days: int = 30

    def period_end(self, approved_at: datetime, risk: RiskLevel | None) -> datetime:
        """An unassessed risk counts as High (the shortest period)."""
        return add_years(approved_at, self.years[risk or RiskLevel.HIGH])

    def validity(self, case: KycCase | None, approved_at: datetime) -> Validity:
        """The risk level's period from the approval, never past the end (UTC) of a document's expiry day
        (no case: an approval older than periodic re-KYC without one, held as High risk)."""
        until = min([self.period_end(approved_at, case.risk_level if case else None)] + [
            datetime.combine(expiry + timedelta(days=1), time(), UTC)
            for doc in (case.documents if case else []) if (expiry := document_expiry(doc))])
        return Validity(until, until - timedelta(days=self.notice_days))

    def items(self, case: KycCase, now: datetime) -> list[Redo]:
        """What renewing asks for: each document expired by now, and once the period ran out (or nothing
        expired) a new selfie with a passed liveness challenge."""
        expired = [Redo("document", d.type, d.side) for d in case.documents
                   if (expiry := document_expiry(d)) and expiry < now.date()]
        lapsed = case.decision is None or now >= self.period_end(case.decision.at, case.risk_level)
        return ([Redo(LIVENESS)] if lapsed or not expired else []) + expired
