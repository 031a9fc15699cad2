"""The KFS as the loan views show it, for unit tests that render a loan body (`LoanDetail.body`)."""

from __future__ import annotations

from datetime import date

from app.api.schemas.loans import KfsOut
from app.domain.kfs import Contact, KfsTerms, current_issue
from app.domain.loans import Loan

TERMS = KfsTerms(3, frozenset(), Contact("Grievance Officer", "grievances@example.com", "+911800000000"), False,
                 "We collect overdue amounts ourselves.")


def kfs_of(loan: Loan, today: date = date(2026, 12, 1)) -> KfsOut:
    return KfsOut.shown(loan, current_issue(loan, today, TERMS.validity_working_days, TERMS.holidays), TERMS)
