"""Boundaries of the lending rules that `make mutation` found unpinned: each product limit
and what it says, eligibility exactly at a product's minimum amount, tenure, income and
age (on the birthday), a one-month loan's FOIR, the step down to an EMI that fits, and a
pre-closure quote dated exactly on a due date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from app.domain.errors import InvalidInput
from app.domain.loan_schedule import InvalidLoanTerms, RepaymentFrequency, build_schedule, emi
from app.domain.loans import (
    Applicant,
    InvalidLoanProduct,
    InvalidTransition,
    LoanProduct,
    LoanStatus,
    NotEligible,
    Overpayment,
    age_on,
    allocate_repayment,
    check_eligibility,
    ensure_eligible,
    ensure_transition,
    max_eligible_amount,
    outstanding,
    outstanding_principal,
    preclosure_quote,
)
from app.domain.money import InvalidAmount

# The product, applicant and day of the lending rules' tests: these pin the boundaries around them.
from tests.unit.test_loans_rules import APPLICANT, PRODUCT, TODAY, codes

D = Decimal

# --- product limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("change, field, message", [
    ({"name": ""}, "name", "The name must not be empty."),
    ({"type": "mortgage"}, "type", "Unknown loan type."),
    ({"repayment_frequency": "yearly"}, "repayment_frequency", "Repayment frequency must be monthly, weekly or daily."),
    ({"min_amount": D("0")}, "min_amount", "The minimum amount must be above 0."),
    ({"max_amount": D("49999.99")}, "max_amount", "The maximum amount must be at least the minimum."),
    ({"min_tenure_months": 0}, "min_tenure_months", "Tenures must be 1 to 360 months."),
    ({"max_tenure_months": 361}, "max_tenure_months", "Tenures must be 1 to 360 months."),
    ({"max_tenure_months": 5}, "max_tenure_months", "The maximum tenure must be at least the minimum."),
    ({"annual_interest_rate": D("60.01")}, "annual_interest_rate", "The annual interest rate must be 0 to 60 %."),
    ({"processing_fee_pct": D("10.01")}, "processing_fee_pct", "Fees and charges must be 0 to 10 %."),
    ({"prepayment_charge_pct": D("-0.01")}, "prepayment_charge_pct", "Fees and charges must be 0 to 10 %."),
    ({"min_monthly_income": D("-0.01")}, "min_monthly_income", "The minimum income must not be negative."),
    ({"min_age": 17}, "min_age", "Ages must be 18 to 100."),
    ({"max_age": 20}, "max_age", "The maximum age must be at least the minimum."),
    ({"max_foir": D("1.0001")}, "max_foir", "max_foir must be above 0 and at most 1."),
    ({"max_risk_level": "Extreme"}, "max_risk_level", "Risk level must be one of Low, Medium, High."),
])  # fmt: skip
def test_a_broken_limit_names_its_field_and_says_why(change, field, message):
    with pytest.raises(InvalidLoanProduct) as caught:
        replace(PRODUCT, **change).validate()
    assert caught.value.message == message
    assert caught.value.details["errors"] == [{"field": field, "message": message}]


@pytest.mark.parametrize("change", [
    {"min_amount": D("1"), "max_amount": D("1")},
    {"min_tenure_months": 1, "max_tenure_months": 1},
    {"min_tenure_months": 360, "max_tenure_months": 360},
    {"annual_interest_rate": D("0")},
    {"annual_interest_rate": D("60")},
    {"processing_fee_pct": D("0"), "prepayment_charge_pct": D("10")},
    {"min_monthly_income": D("0")},
    {"min_age": 18, "max_age": 18},
    {"min_age": 100, "max_age": 100},
    {"max_foir": D("1")},
    {"max_risk_level": "High"},
])  # fmt: skip
def test_limits_exactly_at_their_edges_are_sound(change):
    product = replace(PRODUCT, **change)
    assert product.validate() is product


# --- age ---------------------------------------------------------------------------------------


def test_a_year_older_on_the_birthday_not_the_day_before():
    dob = date(2005, 11, 22)
    assert age_on(dob, date(2026, 11, 21)) == 20
    assert age_on(dob, date(2026, 11, 22)) == 21
    assert age_on(dob, date(2026, 12, 1)) == 21


def test_eligible_from_the_birthday_that_reaches_the_minimum_age():
    product = replace(PRODUCT, max_tenure_months=12)
    turning_21 = replace(APPLICANT, dob=date(2005, 11, 22))
    assert "age_below_minimum" not in codes(check_eligibility(product, turning_21, TODAY, D("50000")))
    assert "age_below_minimum" in codes(check_eligibility(product, turning_21, date(2026, 11, 21), D("50000")))


@pytest.mark.parametrize("tenure", [1, 360])
def test_the_age_at_the_last_instalment_counts_from_one_month_to_360(tenure):
    product = replace(PRODUCT, min_tenure_months=1, max_tenure_months=360, max_age=61)
    end = date(2026 + (tenure // 12), 11 + tenure % 12, 22) if tenure == 360 else date(2026, 12, 22)
    too_old = replace(APPLICANT, dob=date(end.year - 62, end.month, end.day))  # 62 on the last due date
    assert "age_above_maximum" in codes(check_eligibility(product, too_old, TODAY, D("50000"), tenure))
    just_61 = replace(APPLICANT, dob=date(end.year - 61, end.month, end.day))  # 61 that very day
    assert "age_above_maximum" not in codes(check_eligibility(product, just_61, TODAY, D("50000"), tenure))


# --- amount, tenure and income at the product's edges -------------------------------------------


def test_the_product_minimum_and_maximum_amount_and_tenure_are_allowed():
    rich = replace(APPLICANT, monthly_income=D("10000000"), existing_emis=D("0"))
    for amount, tenure in ((D("50000"), 6), (D("1000000"), 60), (D("50000"), 60), (D("1000000"), 6)):
        result = check_eligibility(PRODUCT, rich, TODAY, amount, tenure)
        assert result.eligible, (amount, tenure, codes(result))
    assert codes(check_eligibility(PRODUCT, rich, TODAY, D("49999.99"), 6)) == ["amount_out_of_range"]
    assert codes(check_eligibility(PRODUCT, rich, TODAY, D("1000000.01"), 60)) == ["amount_out_of_range"]
    assert codes(check_eligibility(PRODUCT, rich, TODAY, D("50000"), 5)) == ["tenure_out_of_range"]


def test_an_income_exactly_the_minimum_is_enough():
    product = replace(PRODUCT, max_foir=D("1"))
    at_minimum = replace(APPLICANT, monthly_income=D("25000"), existing_emis=D("0"))
    assert check_eligibility(product, at_minimum, TODAY, D("50000"), 60).eligible
    below = replace(at_minimum, monthly_income=D("24999.99"))
    assert codes(check_eligibility(product, below, TODAY, D("50000"), 60)) == ["income_below_minimum"]


@pytest.mark.parametrize("income, code", [(None, "income_unknown"), (D("0"), "income_unknown"),
                                          (D("1"), "income_below_minimum")])
def test_no_income_is_unknown_and_one_rupee_is_below_the_minimum(income, code):
    result = check_eligibility(PRODUCT, replace(APPLICANT, monthly_income=income), TODAY, D("50000"), 12)
    assert code in codes(result)
    assert result.emi == emi(D("50000"), D("12"), 12)
    assert (result.foir is None) is (code == "income_unknown")
    assert result.max_eligible_amount == 0


def test_one_rupee_of_income_still_gets_its_foir():
    result = check_eligibility(PRODUCT, replace(APPLICANT, monthly_income=D("1"), existing_emis=D("0")),
                               TODAY, D("50000"), 12)
    assert result.foir == D("4442.4400")  # 4,442.44 a month on an income of 1


# --- FOIR ----------------------------------------------------------------------------------------


def test_a_one_month_loans_foir_is_checked():
    product = replace(PRODUCT, min_tenure_months=1)
    result = check_eligibility(product, APPLICANT, TODAY, D("50000"), 1)
    assert result.emi == D("50500.00") and result.foir == D("1.1100")  # (5,000 + 50,500) / 50,000
    assert codes(result) == ["foir_exceeded"]
    assert result.reasons[0].message == "Your EMIs would take 111.00 % of your income; the limit is 50.00 %."


def test_a_360_month_loans_foir_is_checked():
    product = replace(PRODUCT, max_tenure_months=360, max_age=100)
    result = check_eligibility(product, APPLICANT, TODAY, D("1000000"), 360)
    assert result.emi == emi(D("1000000"), D("12"), 360) and result.foir == D("0.3057")
    assert result.eligible


def test_foir_is_rounded_half_up_to_four_places():
    product = replace(PRODUCT, annual_interest_rate=D("0"), min_amount=D("1200"), min_tenure_months=12)
    applicant = replace(APPLICANT, monthly_income=D("100000"), existing_emis=D("12245"))
    result = check_eligibility(product, applicant, TODAY, D("1200"), 12)
    assert result.emi == D("100.00") and result.foir == D("0.1235")  # exactly 0.12345


def test_nothing_to_schedule_gives_no_emi_and_no_foir():
    for amount, tenure in ((D("0"), 12), (D("50000"), 0), (D("50000"), 361)):
        result = check_eligibility(PRODUCT, APPLICANT, TODAY, amount, tenure)
        assert result.emi is None and result.foir is None and not result.eligible
    result = check_eligibility(replace(PRODUCT, min_amount=D("1")), APPLICANT, TODAY, D("1"), 12)
    assert result.emi == D("0.09") and result.foir == D("0.1000")


# --- the largest amount offered ------------------------------------------------------------------


def _product(**change) -> LoanProduct:
    return replace(PRODUCT, **{"min_amount": D("100"), "max_foir": D("1"), "annual_interest_rate": D("0"),
                               "min_tenure_months": 1, "max_tenure_months": 360, **change})


def _earning(income: str) -> Applicant:
    return replace(APPLICANT, monthly_income=D(income), existing_emis=D("0"))


def test_an_offer_is_stepped_down_until_its_rounded_emi_fits():
    # 16.6667 a month for 6 months is 100.0002, but 100 / 6 rounds up to 16.67: nothing fits
    assert max_eligible_amount(_product(), _earning("16.6667"), 6) == 0
    # 25 a month for 4 months is exactly 100, whose EMI is exactly 25: it fits
    assert max_eligible_amount(_product(), _earning("25"), 4) == D("100")
    assert max_eligible_amount(_product(min_amount=D("100.01")), _earning("25"), 4) == 0
    # 33.3334 a month for 6 months is 200.0004; 200 / 6 rounds to 33.33: it fits at once
    assert max_eligible_amount(_product(), _earning("33.3334"), 6) == D("200")


def test_an_instalment_of_one_rupee_a_month_still_buys_something():
    assert max_eligible_amount(_product(), _earning("1"), 360) == D("300")  # 360 rupees, in hundreds
    assert max_eligible_amount(_product(), _earning("1"), 1) == 0


@pytest.mark.parametrize("tenure, amount", [(0, 0), (1, D("100")), (360, D("36000")), (361, 0)])
def test_offers_only_for_tenures_of_1_to_360_months(tenure, amount):
    assert max_eligible_amount(_product(), _earning("100"), tenure) == amount


@pytest.mark.parametrize("frequency", list(RepaymentFrequency))
def test_the_offer_uses_the_products_frequency(frequency):
    product = _product(annual_interest_rate=D("12"), repayment_frequency=frequency, max_amount=D("10000000"))
    per_instalment = Fraction(10000) * 12 / {"monthly": 12, "weekly": 52, "daily": 365}[frequency.value]
    n = frequency.instalments(24)
    r = Fraction(12, 100) / frequency.periods_per_year
    exact = per_instalment * (1 - (1 + r) ** -n) / r
    offered = max_eligible_amount(product, _earning("10000"), 24)
    assert offered == D(int(exact // 100) * 100) or offered == D(int(exact // 100) * 100 - 100)
    assert emi(offered, D("12"), 24, frequency) <= D(float(per_instalment)).quantize(D("0.01"))
    assert emi(offered + 100, D("12"), 24, frequency) > per_instalment


def test_without_an_amount_the_minimum_is_checked_when_nothing_fits():
    result = check_eligibility(PRODUCT, replace(APPLICANT, monthly_income=None), TODAY)
    assert result.amount == PRODUCT.min_amount and result.max_eligible_amount == 0
    assert "amount_out_of_range" not in codes(result)
    offered = check_eligibility(PRODUCT, APPLICANT, TODAY)
    assert offered.amount == offered.max_eligible_amount == max_eligible_amount(PRODUCT, APPLICANT, 60) > 0


# --- what a refusal says ---------------------------------------------------------------------


def test_each_reason_says_what_to_do():
    applicant = Applicant(kyc_status="PENDING", dob=None, monthly_income=None, missing=("dob", "monthly_income"))
    result = check_eligibility(replace(PRODUCT, active=False), applicant, TODAY, D("50000"), 12)
    assert [(r.code, r.message) for r in result.reasons] == [
        ("product_inactive", "This product is not offered at the moment."),
        ("kyc_not_approved", "Your KYC must be approved before you can borrow."),
        ("age_unknown", "Add your date of birth to your profile."),
        ("income_unknown", "Add your monthly income to your financial details."),
        ("details_missing", "Loans need these details, not given yet: dob, monthly_income."),
    ]
    with pytest.raises(NotEligible) as caught:
        ensure_eligible(result)
    assert caught.value.message == "This product is not offered at the moment."
    assert [r["message"] for r in caught.value.details["reasons"]] == [r.message for r in result.reasons]


def test_a_refused_transition_names_both_states():
    with pytest.raises(InvalidTransition) as caught:
        ensure_transition(LoanStatus.APPLIED, LoanStatus.CLOSED)
    assert caught.value.message == "The loan is APPLIED and cannot become CLOSED."
    assert caught.value.details == {"current": "APPLIED", "target": "CLOSED"}


# --- repayments -----------------------------------------------------------------------------------


def lakh_schedule():
    return build_schedule(D("100000"), D("12"), 12, disbursed_on=date(2026, 1, 15)).instalments


def test_nothing_outstanding_is_zero_rupees_and_paise():
    assert str(outstanding([])) == "0.00" and str(outstanding_principal([])) == "0.00"


def test_what_a_refused_payment_says():
    with pytest.raises(InvalidAmount) as caught:
        allocate_repayment(lakh_schedule(), D("0.001"))
    assert caught.value.message == "The payment must be a positive amount with at most 2 decimal places."
    with pytest.raises(Overpayment) as over:
        allocate_repayment(lakh_schedule(), D("106618.54"))
    assert over.value.message == "The payment is more than the 106618.53 outstanding."
    assert over.value.details == {"outstanding": "106618.53"}


# --- pre-closure ------------------------------------------------------------------------------------


def test_a_quote_dated_exactly_on_a_due_date():
    rows = lakh_schedule()  # instalment 1 falls due on 15 Feb and is not paid
    quote = preclosure_quote(rows, D("12"), D("2"), date(2026, 1, 15), date(2026, 2, 15))
    assert (quote.accrued_from, quote.accrued_days, quote.accrued_interest) == (date(2026, 2, 15), 0, D("0.00"))
    assert quote.overdue_interest == D("1000.00")  # instalment 1 is due that day: its interest is owed
    assert str(quote.advance_interest_credit) == "0.00"
    assert quote.foreclosure_amount == D("100000.00") + D("1000.00") + D("2000.00")
    assert (quote.quote_date, quote.annual_interest_rate, quote.prepayment_charge_pct) == (
        date(2026, 2, 15), D("12"), D("2"))


def test_interest_paid_for_an_instalment_due_on_the_quote_date_is_not_credited():
    rows = allocate_repayment(lakh_schedule(), D("500")).instalments  # half of instalment 1's interest
    quote = preclosure_quote(rows, D("12"), D("0"), date(2026, 1, 15), date(2026, 2, 15))
    assert quote.overdue_interest == D("500.00") and str(quote.advance_interest_credit) == "0.00"
    early = preclosure_quote(rows, D("12"), D("0"), date(2026, 1, 15), date(2026, 2, 14))
    assert str(early.overdue_interest) == "0.00" and early.advance_interest_credit == D("500.00")


def test_a_quote_on_the_day_of_disbursal_and_not_before():
    quote = preclosure_quote(lakh_schedule(), D("12"), D("0"), date(2026, 1, 15), date(2026, 1, 15))
    assert quote.accrued_days == 0 and quote.foreclosure_amount == D("100000.00")
    with pytest.raises(InvalidInput) as caught:
        preclosure_quote(lakh_schedule(), D("12"), D("0"), date(2026, 1, 15), date(2026, 1, 14))
    assert caught.value.message == "A quote cannot be dated before the disbursal."
    undated = build_schedule(D("100000"), D("12"), 12).instalments
    with pytest.raises(InvalidLoanTerms) as no_dates:
        preclosure_quote(undated, D("12"), D("0"), date(2026, 1, 15), date(2026, 2, 1))
    assert no_dates.value.message == "The loan has no due dates: it has not been disbursed."


def test_interest_paid_ahead_beyond_what_is_owed_is_refunded():
    rows = lakh_schedule()
    paid = allocate_repayment(rows, outstanding(rows) - D("1.00")).instalments  # all but 1.00 of principal
    quote = preclosure_quote(paid, D("12"), D("0"), date(2026, 1, 15), date(2026, 1, 20))
    assert quote.outstanding_principal == D("1.00")
    credit = sum((i.interest for i in rows), D("0"))
    assert quote.advance_interest_credit == credit
    assert quote.foreclosure_amount == 0
    assert quote.refund_due == credit - D("1.00") - quote.accrued_interest > 0


def test_a_quote_after_the_last_due_date_credits_nothing_in_paise():
    rows = lakh_schedule()  # nothing paid; the last instalment fell due on 15 Jan 2027
    quote = preclosure_quote(rows, D("12"), D("0"), date(2026, 1, 15), date(2027, 2, 1))
    assert (quote.accrued_from, quote.accrued_days) == (date(2027, 1, 15), 17)
    assert str(quote.advance_interest_credit) == "0.00" and quote.overdue_interest == sum(i.interest for i in rows)
