"""Lending rules: product limits, eligibility reasons, lifecycle, repayments, pre-closure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.errors import Conflict, InvalidInput, RuleViolation
from app.domain.loan_schedule import InvalidLoanTerms, RepaymentFrequency, build_schedule, emi
from app.domain.loans import (
    Applicant,
    InvalidLoanProduct,
    InvalidTransition,
    LoanProduct,
    LoanRepaid,
    LoanStatus,
    LoanType,
    NotEligible,
    Overpayment,
    allocate_repayment,
    check_eligibility,
    ensure_eligible,
    ensure_transition,
    max_eligible_amount,
    next_due,
    outstanding,
    outstanding_principal,
    preclosure_quote,
)
from app.domain.money import InvalidAmount

D = Decimal
TODAY = date(2026, 11, 22)
PRODUCT = LoanProduct(
    bank_id="b1", name="Salaried personal loan", type=LoanType.PERSONAL, min_amount=D("50000"),
    max_amount=D("1000000"), min_tenure_months=6, max_tenure_months=60, annual_interest_rate=D("12"),
    processing_fee_pct=D("2"), prepayment_charge_pct=D("2"), repayment_frequency=RepaymentFrequency.MONTHLY,
    min_monthly_income=D("25000"), min_age=21, max_age=60, max_foir=D("0.5"),
)
# 36 today; 50,000 a month, already paying 5,000 a month.
APPLICANT = Applicant(kyc_status="APPROVED", dob=date(1990, 5, 1), monthly_income=D("50000"),
                      existing_emis=D("5000"), risk_level="Low")


def codes(result) -> list[str]:
    return [r.code for r in result.reasons]


# --- products ----------------------------------------------------------------------


def test_a_sound_product_validates():
    assert PRODUCT.validate() is PRODUCT


@pytest.mark.parametrize("change, field", [
    ({"min_amount": D("2000000")}, "max_amount"), ({"min_amount": D("0")}, "min_amount"),
    ({"min_tenure_months": 61}, "max_tenure_months"), ({"min_tenure_months": 0}, "min_tenure_months"),
    ({"max_tenure_months": 361}, "max_tenure_months"),
    ({"annual_interest_rate": D("60.01")}, "annual_interest_rate"), ({"annual_interest_rate": D("-1")}, "annual_interest_rate"),
    ({"processing_fee_pct": D("10.5")}, "processing_fee_pct"), ({"prepayment_charge_pct": D("-0.5")}, "prepayment_charge_pct"),
    ({"min_age": 17}, "min_age"), ({"max_age": 101}, "max_age"), ({"min_age": 61}, "max_age"),
    ({"max_foir": D("0")}, "max_foir"), ({"max_foir": D("1.01")}, "max_foir"),
    ({"min_monthly_income": D("-1")}, "min_monthly_income"), ({"name": "  "}, "name"),
    ({"max_risk_level": "Extreme"}, "max_risk_level"),
])
def test_inconsistent_limits_are_refused_naming_the_field(change, field):
    with pytest.raises(InvalidLoanProduct) as caught:
        replace(PRODUCT, **change).validate()
    assert caught.value.code == "invalid_product"
    assert isinstance(caught.value, InvalidInput)
    assert field in [e["field"] for e in caught.value.details["errors"]]


def test_every_broken_limit_is_reported_at_once():
    with pytest.raises(InvalidLoanProduct) as caught:
        replace(PRODUCT, annual_interest_rate=D("70"), max_foir=D("2"), min_age=10).validate()
    assert {e["field"] for e in caught.value.details["errors"]} == {"annual_interest_rate", "max_foir", "min_age"}


def test_edges_of_the_limits_are_allowed():
    replace(PRODUCT, annual_interest_rate=D("60"), processing_fee_pct=D("10"), prepayment_charge_pct=D("0"),
            min_age=18, max_age=100, max_foir=D("1"), min_amount=D("1000000"), min_tenure_months=60).validate()


# --- eligibility -------------------------------------------------------------------


def test_an_eligible_applicant_gets_the_emi_and_foir():
    result = check_eligibility(PRODUCT, APPLICANT, TODAY, D("300000"), 36)
    assert result.eligible and result.reasons == ()
    assert result.emi == D("9964.29")  # 300,000 at 12 % for 36 months
    assert result.foir == D("0.2993")  # (5,000 + 9,964.29) / 50,000


def test_max_eligible_amount_is_the_principal_that_fits_the_foir_headroom():
    # Headroom 0.5 × 50,000 − 5,000 = 20,000 a month; at 1 % a month for 60 months.
    r, n = Fraction(1, 100), 60
    exact = Fraction(20000) * ((1 + r) ** n - 1) / (r * (1 + r) ** n)
    expected = D(int(exact) // 100 * 100)
    assert expected == D("899100")
    best = max_eligible_amount(PRODUCT, APPLICANT, 60)
    assert best == expected
    assert emi(best, D("12"), 60) <= D("20000") < emi(best + 100, D("12"), 60)
    result = check_eligibility(PRODUCT, APPLICANT, TODAY, best, 60)
    assert result.eligible and result.foir <= D("0.5")


def test_max_eligible_amount_is_capped_by_the_product():
    rich = replace(APPLICANT, monthly_income=D("1000000"))
    assert max_eligible_amount(PRODUCT, rich, 60) == D("1000000")


def test_max_eligible_amount_is_zero_when_nothing_fits():
    stretched = replace(APPLICANT, existing_emis=D("24000"))  # headroom 1,000: 44,955 < the 50,000 minimum
    assert max_eligible_amount(PRODUCT, stretched, 60) == 0
    assert max_eligible_amount(PRODUCT, replace(APPLICANT, monthly_income=None), 60) == 0


def test_without_amount_and_tenure_the_best_offer_is_checked():
    result = check_eligibility(PRODUCT, APPLICANT, TODAY)
    assert (result.amount, result.tenure_months, result.eligible) == (D("899100"), 60, True)


def test_weekly_instalments_count_for_foir_as_52_over_12():
    weekly = replace(PRODUCT, repayment_frequency=RepaymentFrequency.WEEKLY)
    result = check_eligibility(weekly, APPLICANT, TODAY, D("100000"), 12)
    assert result.emi == emi(D("100000"), D("12"), 12, RepaymentFrequency.WEEKLY)
    expected = ((D(5000) + result.emi * 52 / 12) / 50000).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
    assert result.foir == expected


@pytest.mark.parametrize("applicant, amount, tenure, code", [
    (replace(APPLICANT, kyc_status="SUBMITTED"), D("300000"), 36, "kyc_not_approved"),
    (replace(APPLICANT, dob=date(2006, 1, 1)), D("300000"), 36, "age_below_minimum"),  # 20
    (replace(APPLICANT, dob=date(1968, 1, 1)), D("300000"), 36, "age_above_maximum"),  # 58 now, 61 at the end
    (replace(APPLICANT, dob=None), D("300000"), 36, "age_unknown"),
    (replace(APPLICANT, monthly_income=D("60000"), existing_emis=D("0"), risk_level="Low",
             dob=date(1990, 5, 1)), D("40000"), 36, "amount_out_of_range"),
    (replace(APPLICANT, monthly_income=D("500000")), D("1000000.01"), 36, "amount_out_of_range"),
    (APPLICANT, D("60000"), 5, "tenure_out_of_range"),
    (APPLICANT, D("300000"), 61, "tenure_out_of_range"),
    (replace(APPLICANT, monthly_income=D("24999.99"), existing_emis=D("0")), D("60000"), 36, "income_below_minimum"),
    (replace(APPLICANT, monthly_income=None), D("300000"), 36, "income_unknown"),
    (replace(APPLICANT, existing_emis=D("16000")), D("300000"), 36, "foir_exceeded"),
    (replace(APPLICANT, risk_level="High"), D("300000"), 36, "risk_too_high"),
    (replace(APPLICANT, risk_level=None, missing=("children",)), D("300000"), 36, "details_missing"),
])
def test_each_rule_alone_gives_its_reason(applicant, amount, tenure, code):
    result = check_eligibility(PRODUCT, applicant, TODAY, amount, tenure)
    assert not result.eligible
    assert codes(result) == [code]
    assert all(r.message.endswith(".") for r in result.reasons)


def test_missing_details_are_named_in_the_reason():
    result = check_eligibility(PRODUCT, replace(APPLICANT, risk_level=None, missing=("family_size", "employment_details")),
                               TODAY, D("300000"), 36)
    assert [(r.code, r.fields) for r in result.reasons] == [("details_missing", ("family_size", "employment_details"))]
    assert "family_size, employment_details" in result.reasons[0].message
    with pytest.raises(NotEligible) as caught:
        ensure_eligible(result)
    assert caught.value.details["reasons"][0]["fields"] == ["family_size", "employment_details"]


def test_foir_exactly_at_the_limit_is_eligible_and_a_paisa_over_is_not():
    instalment = emi(D("300000"), PRODUCT.annual_interest_rate, 36)
    at_limit = replace(APPLICANT, monthly_income=D("50000"), existing_emis=D("25000") - instalment)
    result = check_eligibility(PRODUCT, at_limit, TODAY, D("300000"), 36)
    assert result.eligible and result.foir == D("0.5")
    over = replace(at_limit, existing_emis=at_limit.existing_emis + D("0.01"))
    result = check_eligibility(PRODUCT, over, TODAY, D("300000"), 36)
    assert codes(result) == ["foir_exceeded"] and result.foir == D("0.5")  # shown rounded, judged exactly


def test_age_is_checked_at_the_end_of_the_tenure():
    born = date(1968, 1, 1)  # 58 now
    assert check_eligibility(PRODUCT, replace(APPLICANT, dob=born), TODAY, D("100000"), 24).eligible  # 60 at the end
    assert codes(check_eligibility(PRODUCT, replace(APPLICANT, dob=born), TODAY, D("100000"), 26)) == ["age_above_maximum"]


def test_an_inactive_product_is_not_offered():
    assert codes(check_eligibility(replace(PRODUCT, active=False), APPLICANT, TODAY, D("300000"), 36)) == ["product_inactive"]


def test_every_failed_rule_is_returned_not_only_the_first():
    hopeless = Applicant(kyc_status="PENDING", dob=date(1960, 1, 1), monthly_income=D("20000"),
                         existing_emis=D("15000"), risk_level="High")
    result = check_eligibility(PRODUCT, hopeless, TODAY, D("300000"), 36)
    assert set(codes(result)) == {"kyc_not_approved", "age_above_maximum", "income_below_minimum",
                                  "foir_exceeded", "risk_too_high"}
    with pytest.raises(NotEligible) as caught:
        ensure_eligible(result)
    assert caught.value.code == "not_eligible" and isinstance(caught.value, RuleViolation)
    assert [r["code"] for r in caught.value.details["reasons"]] == codes(result)


def test_medium_risk_passes_a_product_that_lends_up_to_medium():
    assert check_eligibility(PRODUCT, replace(APPLICANT, risk_level="Medium"), TODAY, D("300000"), 36).eligible


# --- lifecycle ---------------------------------------------------------------------

S = LoanStatus
ALLOWED = {(S.APPLIED, S.APPROVED), (S.APPLIED, S.REJECTED), (S.APPROVED, S.DISBURSED),
           (S.DISBURSED, S.PRE_CLOSURE_REQUESTED), (S.DISBURSED, S.CLOSED), (S.PRE_CLOSURE_REQUESTED, S.CLOSED)}


@pytest.mark.parametrize("current", list(LoanStatus))
@pytest.mark.parametrize("target", list(LoanStatus))
def test_only_the_documented_transitions_are_allowed(current, target):
    assert current.can(target) == ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        assert ensure_transition(current.value, target) is target
    else:
        with pytest.raises(InvalidTransition) as caught:
            ensure_transition(current, target)
        assert caught.value.code == "invalid_transition" and isinstance(caught.value, Conflict)
        assert caught.value.details == {"current": current.value, "target": target.value}


def test_final_states():
    assert {s for s in LoanStatus if s.is_final} == {S.REJECTED, S.CLOSED}


# --- repayments --------------------------------------------------------------------


def lakh_schedule(disbursed_on: date | None = date(2026, 1, 15)):
    return build_schedule(D("100000"), D("12"), 12, disbursed_on=disbursed_on).instalments


def test_a_payment_goes_to_interest_then_principal_of_the_oldest_instalment():
    rows = lakh_schedule()
    first = allocate_repayment(rows, D("500"))
    assert [(a.instalment, a.interest, a.principal) for a in first.allocations] == [(1, D("500"), D("0"))]
    second = allocate_repayment(first.instalments, D("8884.88"))
    assert [(a.instalment, a.interest, a.principal) for a in second.allocations] == [
        (1, D("500.00"), D("7884.88")), (2, D("500.00"), D("0"))]  # instalment 2's interest is 921.15
    assert second.instalments[0].paid and not second.instalments[1].paid
    assert next_due(second.instalments).number == 2
    assert outstanding_principal(second.instalments) == D("100000") - D("7884.88")
    assert second.outstanding == D("106618.53") - D("9384.88")
    assert rows == lakh_schedule()  # the input schedule is never changed


def test_paying_everything_closes_and_nothing_more_can_be_paid():
    rows = lakh_schedule()
    result = allocate_repayment(rows, D("106618.53"))
    assert result.fully_paid and outstanding(result.instalments) == 0 and next_due(result.instalments) is None
    assert sum(a.amount for a in result.allocations) == D("106618.53")
    with pytest.raises(LoanRepaid):
        allocate_repayment(result.instalments, D("1"))


def test_an_overpayment_is_refused():
    with pytest.raises(Overpayment) as caught:
        allocate_repayment(lakh_schedule(), D("106618.54"))
    assert caught.value.code == "overpayment" and isinstance(caught.value, RuleViolation)
    assert caught.value.details == {"outstanding": "106618.53"}


@pytest.mark.parametrize("amount", [D("0"), D("-1"), D("1.001"), D("NaN"), 100.0, "100"])
def test_a_malformed_payment_is_refused(amount):
    with pytest.raises(InvalidAmount):
        allocate_repayment(lakh_schedule(), amount)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.decimals(min_value=D("0.01"), max_value=D("40000"), places=2), min_size=1, max_size=25),
       st.sampled_from(list(RepaymentFrequency)), st.integers(1, 12))
def test_any_sequence_of_repayments_keeps_the_books_straight(amounts, frequency, tenure):
    rows = build_schedule(D("150000"), D("18"), tenure, frequency).instalments
    total, paid = outstanding(rows), D("0")
    for amount in amounts:
        owed = outstanding(rows)
        if owed == 0:
            break
        if amount > owed:
            with pytest.raises(Overpayment):
                allocate_repayment(rows, amount)
            amount = owed
        result = allocate_repayment(rows, amount)
        assert sum(a.amount for a in result.allocations) == amount
        assert all(a.interest >= 0 and a.principal >= 0 for a in result.allocations)
        rows = result.instalments
        paid += amount
        assert result.outstanding == outstanding(rows) == total - paid >= 0
        assert all(0 <= r.interest_paid <= r.interest and 0 <= r.principal_paid <= r.principal for r in rows)
        # Oldest first: nothing is paid on an instalment while an earlier one is unpaid.
        unpaid = [r.number for r in rows if not r.paid]
        touched = [r.number for r in rows if r.interest_paid or r.principal_paid]
        assert not unpaid or not touched or max(touched) <= min(unpaid)


# --- pre-closure -------------------------------------------------------------------


def test_preclosure_quote_after_one_instalment():
    rows = allocate_repayment(lakh_schedule(), D("8884.88")).instalments
    quote = preclosure_quote(rows, D("12"), D("2"), date(2026, 1, 15), date(2026, 3, 1))
    assert quote.outstanding_principal == D("92115.12")
    assert (quote.accrued_from, quote.accrued_days) == (date(2026, 2, 15), 14)
    exact = Fraction("92115.12") * Fraction(12, 100) * 14 / 365  # 423.98…
    assert quote.accrued_interest == D(float(exact)).quantize(D("0.01"), rounding=ROUND_HALF_UP) == D("423.98")
    assert quote.prepayment_charge == D("1842.30")
    assert (quote.overdue_interest, quote.advance_interest_credit, quote.refund_due) == (0, 0, 0)
    assert quote.foreclosure_amount == D("92115.12") + D("423.98") + D("1842.30") == D("94381.40")


def test_preclosure_before_the_first_due_date_accrues_from_disbursal():
    quote = preclosure_quote(lakh_schedule(), D("12"), D("0"), date(2026, 1, 15), date(2026, 1, 25))
    assert (quote.accrued_from, quote.accrued_days, quote.accrued_interest) == (date(2026, 1, 15), 10, D("328.77"))
    assert quote.foreclosure_amount == D("100328.77")


def test_preclosure_collects_overdue_interest():
    quote = preclosure_quote(lakh_schedule(), D("12"), D("0"), date(2026, 1, 15), date(2026, 2, 20))
    assert quote.overdue_interest == D("1000.00")  # instalment 1 (due 15 Feb) was never paid
    assert quote.outstanding_principal == D("100000.00")
    assert quote.foreclosure_amount == D("100000.00") + D("1000.00") + quote.accrued_interest


def test_interest_paid_ahead_is_credited():
    rows = allocate_repayment(lakh_schedule(), D("8884.88") + D("500")).instalments  # 500 of instalment 2's interest
    quote = preclosure_quote(rows, D("12"), D("0"), date(2026, 1, 15), date(2026, 2, 20))
    assert quote.advance_interest_credit == D("500.00")
    assert quote.foreclosure_amount == quote.outstanding_principal + quote.accrued_interest - D("500.00")


def test_preclosure_quote_is_refused_before_disbursal_or_without_dates():
    with pytest.raises(InvalidInput):
        preclosure_quote(lakh_schedule(), D("12"), D("2"), date(2026, 1, 15), date(2026, 1, 14))
    with pytest.raises(InvalidLoanTerms):
        preclosure_quote(lakh_schedule(None), D("12"), D("2"), date(2026, 1, 15), date(2026, 2, 1))
    paid = allocate_repayment(lakh_schedule(), D("106618.53")).instalments
    with pytest.raises(LoanRepaid):
        preclosure_quote(paid, D("12"), D("2"), date(2026, 1, 15), date(2026, 2, 1))
