"""What eligibility reads from a stored user: exact figures, the EMIs of loans already held, the
profile risk only once assessed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from app.domain.users import KycStatus, Role, User, UserStatus
from app.services.loans import applicant_of
from tests.integration.test_lending_repositories import _loan

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _user(**fields) -> User:
    return User(id="u1", name="Asha", role=Role.CUSTOMER, status=UserStatus.ACTIVE, password_hash="x", created_at=NOW,
                kyc_status=KycStatus.APPROVED, **fields)


def test_stored_floats_are_read_exactly_and_our_loans_count_as_emis():
    user = _user(profile={"dob": "1990-04-12"}, profile_risk={"status": "DONE", "level": "Low"},
                 financial_details={"monthly_income": 85000.1, "monthly_expenses": 1.0, "existing_emi": 0.1})
    monthly = _loan()
    applicant = applicant_of(user, [monthly])
    assert applicant.monthly_income == Decimal("85000.1") and applicant.dob == date(1990, 4, 12)
    assert applicant.existing_emis == Decimal("0.1") + monthly.emi and applicant.risk_level == "Low"
    assert applicant.kyc_status == "APPROVED"


def test_a_daily_loan_counts_at_its_monthly_equivalent():
    from app.domain.loan_schedule import RepaymentFrequency

    daily = _loan()
    daily = replace(daily, product=replace(daily.product, repayment_frequency=RepaymentFrequency.DAILY),
                    emi=Decimal("100.00"))
    applicant = applicant_of(_user(financial_details={"monthly_income": Decimal("50000.00"),
                                                      "monthly_expenses": Decimal(0), "existing_emi": Decimal(0)}),
                             [daily])
    assert applicant.existing_emis == Decimal("100.00") * 365 / 12


def test_missing_details_and_a_pending_assessment_read_as_unknown():
    applicant = applicant_of(_user(profile_risk={"status": "PENDING", "level": None}), [])
    assert applicant.monthly_income is None and applicant.dob is None and applicant.risk_level is None
    assert applicant.existing_emis == 0
