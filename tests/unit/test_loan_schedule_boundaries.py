"""Boundaries of schedules, EMI and the KFS that `make mutation` found unpinned: the edges
of the terms and what each refusal says, the inverse of the EMI and the IRR against exact
fractions, and a schedule whose rounded EMI would leave a last instalment of 0.00."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest

from app.domain.loan_schedule import (
    InvalidLoanTerms,
    RepaymentFrequency,
    build_schedule,
    emi,
    key_fact_statement,
    periodic_irr,
    principal_for_emi,
)
from app.domain.money import MAX_AMOUNT

D = Decimal
MONTHLY, WEEKLY, DAILY = RepaymentFrequency.MONTHLY, RepaymentFrequency.WEEKLY, RepaymentFrequency.DAILY
N_PER_MONTH = {MONTHLY: Fraction(1), WEEKLY: Fraction(52, 12), DAILY: Fraction(30)}
PER_YEAR = {MONTHLY: 12, WEEKLY: 52, DAILY: 365}


def _refusal(call) -> str:
    with pytest.raises(InvalidLoanTerms) as caught:
        call()
    assert caught.value.code == "invalid_loan_terms"
    return caught.value.message


# --- the edges of the terms -------------------------------------------------------------------


@pytest.mark.parametrize("principal, rate, tenure, message", [
    (D("0"), D("12"), 12, "The principal must be a positive amount in paise."),
    (D("-0.01"), D("12"), 12, "The principal must be a positive amount in paise."),
    (D("100"), D("100.01"), 12, "The annual rate must be between 0 and 100 %."),
    (D("100"), 12.0, 12, "The annual rate must be between 0 and 100 %."),
    (D("100"), D("12"), 0, "The tenure must be 1 to 360 months."),
    (D("100"), D("12"), True, "The tenure must be 1 to 360 months."),  # a bool is no month count
    (D("100"), D("12"), 12.0, "The tenure must be 1 to 360 months."),
])  # fmt: skip
def test_each_refused_term_says_what_is_wrong(principal, rate, tenure, message):
    assert _refusal(lambda: emi(principal, rate, tenure)) == message
    assert _refusal(lambda: build_schedule(principal, rate, tenure)) == message


def test_the_smallest_and_largest_terms_are_scheduled():
    assert emi(D("0.01"), D("0"), 1) == D("0.01")
    assert emi(D("1.00"), D("12"), 1) == D("1.01")
    assert emi(D("1000"), D("100"), 1) == D("1083.33")  # 100 % a year: one month's interest is 1/12
    assert len(build_schedule(D("1000"), D("0"), 360).instalments) == 360


def test_the_total_payment_may_reach_the_largest_amount_but_not_pass_it():
    at_limit = build_schedule(MAX_AMOUNT, D("0"), 12)
    assert at_limit.total_payment == MAX_AMOUNT
    message = _refusal(lambda: build_schedule(MAX_AMOUNT, D("0.01"), 12))
    assert message == f"The total payment would exceed {MAX_AMOUNT}; lower the amount, rate or tenure."


def test_a_schedule_and_its_kfs_state_their_terms():
    schedule = build_schedule(D("250000"), D("10.5"), 24, WEEKLY)
    assert (schedule.principal, schedule.annual_rate_pct, schedule.tenure_months, schedule.frequency) == (
        D("250000.00"), D("10.5"), 24, WEEKLY)
    kfs = key_fact_statement(schedule, D("1.5"))
    assert (kfs.principal, kfs.annual_interest_rate, kfs.repayment_frequency, kfs.tenure_months,
            kfs.processing_fee_pct, kfs.instalments) == (D("250000.00"), D("10.5"), WEEKLY, 24, D("1.5"), 104)


@pytest.mark.parametrize("fee", [D("100"), D("-0.01"), 2.0])
def test_a_fee_of_the_whole_principal_or_no_decimal_is_refused(fee):
    schedule = build_schedule(D("100000"), D("12"), 12)
    assert _refusal(lambda: key_fact_statement(schedule, fee)) == "The processing fee must be between 0 and 100 %."


def test_a_fee_just_under_the_whole_principal_still_has_a_kfs():
    kfs = key_fact_statement(build_schedule(D("100000"), D("12"), 12), D("99.99"))
    assert kfs.net_disbursed == D("10.00") and kfs.apr > 0


# --- a rounded EMI that would leave nothing for the last instalment --------------------------


def test_no_instalment_is_left_at_nothing():
    # 0.12 a week would repay all 2.81 with instalment 25 and leave 0.00 for the 26th
    schedule = build_schedule(D("2.81"), D("27.76"), 6, WEEKLY)
    payments = [i.payment for i in schedule.instalments]
    assert schedule.emi == D("0.11") and len(payments) == 26
    assert payments[-1] == D("0.26") and all(p > 0 for p in payments)
    assert sum(payments) == schedule.total_payment


# --- the inverse of the EMI, exactly ----------------------------------------------------------


def _exact_principal(instalment: Decimal, annual_pct: Decimal, tenure: int, frequency: RepaymentFrequency) -> Fraction:
    n = int(-(-tenure * N_PER_MONTH[frequency] // 1))
    r = Fraction(annual_pct) / 100 / PER_YEAR[frequency]
    if r == 0:
        return Fraction(instalment) * n
    growth = (1 + r) ** n
    return Fraction(instalment) * (growth - 1) / (r * growth)


@pytest.mark.parametrize("instalment, rate, tenure, frequency", [
    (D("8884.88"), D("12"), 12, MONTHLY),
    (D("500"), D("0"), 36, MONTHLY),
    (D("210622.28"), D("38.43"), 1, DAILY),
    (D("1234.56"), D("9.99"), 60, WEEKLY),
    (D("99.99"), D("59.5"), 360, DAILY),
])  # fmt: skip
def test_principal_for_emi_is_the_exact_inverse(instalment, rate, tenure, frequency):
    exact = _exact_principal(instalment, rate, tenure, frequency)
    got = principal_for_emi(instalment, rate, tenure, frequency)
    assert abs(Fraction(got) - exact) <= exact * Fraction(1, 10**40)
    with localcontext(prec=50):
        assert emi(got.quantize(D("0.01")), rate, tenure, frequency) - instalment in (D("-0.01"), D("0"), D("0.01"))


# --- the IRR ------------------------------------------------------------------------------------


def test_repaying_exactly_what_was_received_costs_exactly_nothing():
    assert periodic_irr(D("100"), [D("50"), D("50")]) == 0
    assert periodic_irr(D("100"), [D("40"), D("50")]) == 0  # less than received: still nothing


@pytest.mark.parametrize("received", [D("0"), D("-1")])
def test_an_irr_needs_something_received_and_paid(received):
    message = "Nothing is disbursed, so there is no rate to state."
    assert _refusal(lambda: periodic_irr(received, [D("1")])) == message
    assert _refusal(lambda: periodic_irr(D("1"), [])) == message


@pytest.mark.parametrize("received, payments, rate", [
    (D("100"), [D("121")], Fraction(21, 100)),  # 121 / 1.21 = 100
    (D("1"), [D("1.1")], Fraction(1, 10)),  # one rupee received is something
    (D("100"), [D("60"), D("72")], Fraction(20, 100)),  # 60/1.2 + 72/1.44 = 100
    (D("100"), [D("101")], Fraction(1, 100)),  # exactly the first bracket
])  # fmt: skip
def test_the_irr_is_found_to_1e_30(received, payments, rate):
    assert abs(Fraction(periodic_irr(received, payments)) - rate) < Fraction(1, 10**30)
