"""What eligibility reads from a stored user: exact figures, the EMIs of every open application and
loan, the profile risk derived from the details present, and the date of birth KYC verified."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from app.domain.users import KycStatus, Role, User, UserStatus
from app.services.loans import applicant_of
from tests.integration.test_lending_repositories import _loan

NOW = datetime(2026, 11, 22, tzinfo=UTC)
TODAY = NOW.date()
ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
HOUSEHOLD = {"family_size": 2, "working_members": 2, "children": 0, "current_address": ADDRESS,
             "permanent_address": ADDRESS}
EMPLOYMENT = {"employment_type": "salaried", "employer_name": "Infosys", "designation": "Engineer",
              "years_in_current_job": 5, "total_experience_years": 10}


def _user(**fields) -> User:
    return User(id="u1", name="Asha", role=Role.CUSTOMER, status=UserStatus.ACTIVE, password_hash="x", created_at=NOW,
                kyc_status=KycStatus.APPROVED, **fields)


def test_stored_floats_are_read_exactly_and_our_loans_count_as_emis():
    user = _user(profile={"dob": "1990-04-12", **HOUSEHOLD}, employment_details=EMPLOYMENT,
                 financial_details={"monthly_income": 85000.1, "monthly_expenses": 1.0, "existing_emi": 0.1})
    monthly = _loan()
    applicant = applicant_of(user, [monthly], TODAY)
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
                             [daily], TODAY)
    assert applicant.existing_emis == Decimal("100.00") * 365 / 12


def test_missing_details_read_as_unknown_and_are_named_whatever_the_stored_assessment():
    applicant = applicant_of(_user(profile_risk={"status": "DONE", "level": "Low"}), [], TODAY)
    assert applicant.monthly_income is None and applicant.dob is None and applicant.risk_level is None
    assert applicant.existing_emis == 0
    assert applicant.missing == ("dob", "family_size", "working_members", "children", "current_address",
                                 "permanent_address", "financial_details", "employment_details")


def test_the_risk_is_derived_on_the_spot_from_the_details_present():
    finance = {"monthly_income": Decimal(30000), "monthly_expenses": Decimal(0), "existing_emi": Decimal(15000),
               "credit_score": 640}
    user = _user(profile={"dob": "1990-04-12", **HOUSEHOLD, "family_size": 4}, financial_details=finance,
                 employment_details={**EMPLOYMENT, "employment_type": "business", "years_in_current_job": 0.5,
                                     "total_experience_years": 1})
    # dependants 16, income per member 12, FOIR 10, credit score 20, business 8, a short career 15: 81.
    applicant = applicant_of(user, [], TODAY)
    assert applicant.risk_level == "High" and applicant.missing == ()


def test_after_approval_the_verified_date_of_birth_is_read_not_the_profile():
    user = _user(profile={"dob": "1950-01-01", **HOUSEHOLD}, employment_details=EMPLOYMENT,
                 verified_identity={"name": "Asha", "dob": "1990-04-12"})
    assert applicant_of(user, [], TODAY).dob == date(1990, 4, 12)
    pending = replace(user, kyc_status=KycStatus.SUBMITTED)  # nothing verified yet: the profile's own
    assert applicant_of(pending, [], TODAY).dob == date(1950, 1, 1)
