"""EMI, schedules and the Key Fact Statement, checked against values computed here
independently: exact fractions for the EMI and the rows, a float bisection for the APR."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.loan_schedule import (
    InvalidLoanTerms,
    RepaymentFrequency,
    add_months,
    build_schedule,
    emi,
    key_fact_statement,
)

D = Decimal
MONTHLY, WEEKLY, DAILY = RepaymentFrequency.MONTHLY, RepaymentFrequency.WEEKLY, RepaymentFrequency.DAILY
PER_YEAR = {MONTHLY: 12, WEEKLY: 52, DAILY: 365}


def half_up(value: Fraction) -> Decimal:
    # Exact fraction → paise, half-up, without going through the code under test.
    return (D(value.numerator) / D(value.denominator)).quantize(D("0.01"), rounding=ROUND_HALF_UP) \
        if abs(value) < 10**12 else pytest.fail("too large")


def reference_emi(principal: str, annual_pct: str, n: int, per_year: int) -> Decimal:
    p, r = Fraction(principal), Fraction(annual_pct) / 100 / per_year
    if r == 0:
        return half_up(p / n)
    growth = (1 + r) ** n
    return half_up(p * r * growth / (growth - 1))


def float_irr(received: float, payments: list[float]) -> float:
    def pv(i: float) -> float:
        return sum(a / (1 + i) ** k for k, a in enumerate(payments, start=1))
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if pv(mid) > received else (low, mid)
    return (low + high) / 2


# --- EMI --------------------------------------------------------------------------


def test_emi_of_a_lakh_at_12_percent_for_a_year():
    assert emi(D("100000"), D("12"), 12) == D("8884.88")


@pytest.mark.parametrize("principal, rate, tenure, frequency", [
    ("100000", "12", 12, MONTHLY), ("2500000", "8.5", 240, MONTHLY), ("750000.55", "10.75", 60, MONTHLY),
    ("50000", "18", 6, WEEKLY), ("30000", "24", 3, DAILY), ("1000", "60", 360, MONTHLY), ("123456.78", "0.01", 1, DAILY),
])
def test_emi_matches_the_exact_formula(principal, rate, tenure, frequency):
    n = frequency.instalments(tenure)
    assert emi(D(principal), D(rate), tenure, frequency) == reference_emi(principal, rate, n, PER_YEAR[frequency])


@pytest.mark.parametrize("frequency, tenure, n", [
    (MONTHLY, 12, 12), (MONTHLY, 1, 1), (WEEKLY, 12, 52), (WEEKLY, 1, 5), (WEEKLY, 7, 31), (DAILY, 1, 30), (DAILY, 12, 360),
])
def test_instalment_counts(frequency, tenure, n):
    assert frequency.instalments(tenure) == n
    assert len(build_schedule(D("100000"), D("12"), tenure, frequency).instalments) == n


@pytest.mark.parametrize("principal, rate, tenure", [
    ("0", "12", 12), ("-100", "12", 12), ("100.001", "12", 12), ("1000", "-1", 12), ("1000", "12", 0), ("1000", "12", 361),
])
def test_unschedulable_terms_are_refused(principal, rate, tenure):
    with pytest.raises(InvalidLoanTerms) as caught:
        build_schedule(D(principal), D(rate), tenure)
    assert caught.value.code == "invalid_loan_terms"


def test_float_terms_are_refused():
    with pytest.raises(InvalidLoanTerms):
        emi(100000.0, D("12"), 12)  # type: ignore[arg-type]


# --- schedules --------------------------------------------------------------------


def test_schedule_of_a_lakh_row_by_row():
    schedule = build_schedule(D("100000"), D("12"), 12)
    rows = schedule.instalments
    assert [r.payment for r in rows[:11]] == [D("8884.88")] * 11
    # Row by row with exact fractions: interest = balance × 1 %, half-up.
    balance = Fraction(100000)
    for row in rows:
        interest = half_up(balance / 100)
        assert row.interest == interest
        assert row.opening_balance == D(balance.numerator) / balance.denominator
        balance -= Fraction(str(row.principal))
    assert rows[0].interest == D("1000.00") and rows[0].principal == D("7884.88")
    assert rows[-1].payment == D("8884.85") and rows[-1].closing_balance == D("0.00")
    assert schedule.total_interest == D("6618.53") and schedule.total_payment == D("106618.53")


def test_zero_rate_loan_is_principal_over_n_with_the_last_absorbing_paise():
    schedule = build_schedule(D("100000"), D("0"), 3)
    assert schedule.emi == D("33333.33")
    assert [r.payment for r in schedule.instalments] == [D("33333.33"), D("33333.33"), D("33333.34")]
    assert schedule.total_interest == 0
    even = build_schedule(D("120000"), D("0"), 12)
    assert {r.payment for r in even.instalments} == {D("10000.00")}


def test_tenure_of_one_month_is_one_instalment_of_principal_plus_a_months_interest():
    schedule = build_schedule(D("50000"), D("12"), 1, disbursed_on=date(2026, 3, 31))
    (only,) = schedule.instalments
    assert (only.principal, only.interest, only.payment) == (D("50000.00"), D("500.00"), D("50500.00"))
    assert only.due_date == date(2026, 4, 30)


def test_daily_repayment_loan():
    schedule = build_schedule(D("30000"), D("24"), 1, DAILY, disbursed_on=date(2026, 12, 20))
    rows = schedule.instalments
    assert len(rows) == 30
    assert schedule.emi == reference_emi("30000", "24", 30, 365) == D("1010.22")  # float: 1010.2242
    assert rows[0].interest == D("19.73")  # 30,000 × 0.24 / 365 = 19.726…
    assert [r.due_date for r in rows] == [date(2026, 12, 20) + timedelta(days=k) for k in range(1, 31)]
    assert rows[-1].due_date == date(2027, 1, 19)
    assert sum(r.principal for r in rows) == D("30000.00") and rows[-1].closing_balance == 0


def test_weekly_due_dates_are_seven_days_apart():
    rows = build_schedule(D("50000"), D("18"), 2, WEEKLY, disbursed_on=date(2026, 1, 1)).instalments
    assert len(rows) == 9
    assert [r.due_date for r in rows[:3]] == [date(2026, 1, 8), date(2026, 1, 15), date(2026, 1, 22)]


def test_monthly_due_dates_clamp_to_the_month_end_but_keep_the_day():
    rows = build_schedule(D("100000"), D("12"), 4, disbursed_on=date(2027, 1, 31)).instalments
    assert [r.due_date for r in rows] == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)  # leap year
    assert add_months(date(2026, 11, 15), 14) == date(2028, 1, 15)


def test_a_rounded_up_emi_never_closes_the_loan_early():
    # 1,000 at 12 % for 30 years: the formula's 10.2861… rounds up to 10.29, and
    # that extra 0.39 paisa compounded over 359 months would repay it months early.
    principal, rate, n = Fraction(1000), Fraction(1, 100), 360
    balance, closed_at = principal, None
    for k in range(1, n):
        balance -= Fraction("10.29") - Fraction(str(half_up(balance * rate)))
        if balance <= 0:
            closed_at = k
            break
    assert closed_at is not None and closed_at < n  # the naive schedule would close early
    schedule = build_schedule(D("1000"), D("12"), 360)
    assert emi(D("1000"), D("12"), 360) == D("10.29")
    assert schedule.emi == D("10.28")  # the largest that keeps all 360 instalments
    assert len(schedule.instalments) == 360
    assert all(r.payment == D("10.28") for r in schedule.instalments[:-1])
    assert schedule.instalments[-1].principal > 0 and schedule.instalments[-1].closing_balance == 0


def test_a_long_daily_schedule_still_balances():
    schedule = build_schedule(D("1000"), D("60"), 360, DAILY)
    assert len(schedule.instalments) == 10800
    assert sum(r.principal for r in schedule.instalments) == D("1000.00")
    assert min(r.closing_balance for r in schedule.instalments) == 0


# --- Key Fact Statement -----------------------------------------------------------


def test_kfs_with_a_2_percent_fee_against_a_hand_computed_irr():
    schedule = build_schedule(D("100000"), D("12"), 12)
    kfs = key_fact_statement(schedule, D("2"))
    assert kfs.processing_fee == D("2000.00") and kfs.net_disbursed == D("98000.00")
    assert (kfs.emi, kfs.instalments) == (D("8884.88"), 12)
    assert (kfs.total_interest, kfs.total_payable) == (D("6618.53"), D("106618.53"))
    monthly = float_irr(98000.0, [float(r.payment) for r in schedule.instalments])
    assert kfs.apr == D(f"{monthly * 12 * 100:.2f}") == D("15.85")
    assert kfs.effective_annual_rate == D(f"{((1 + monthly) ** 12 - 1) * 100:.2f}") == D("17.06")


def test_without_a_fee_the_apr_is_the_nominal_rate():
    for frequency in (MONTHLY, WEEKLY, DAILY):
        kfs = key_fact_statement(build_schedule(D("500000"), D("10.5"), 24, frequency), D("0"))
        assert kfs.apr == D("10.50"), frequency
        assert kfs.net_disbursed == D("500000.00")


def test_daily_loan_apr_with_a_fee_against_a_float_irr():
    schedule = build_schedule(D("30000"), D("24"), 1, DAILY)
    kfs = key_fact_statement(schedule, D("3"))
    daily = float_irr(29100.0, [float(r.payment) for r in schedule.instalments])
    assert kfs.apr == D(f"{daily * 365 * 100:.2f}")
    assert kfs.apr > D("24")


def test_zero_rate_zero_fee_costs_nothing():
    kfs = key_fact_statement(build_schedule(D("60000"), D("0"), 6), D("0"))
    assert (kfs.apr, kfs.total_interest, kfs.total_payable) == (D("0.00"), D("0.00"), D("60000.00"))


def test_zero_rate_with_a_fee_still_has_an_apr():
    kfs = key_fact_statement(build_schedule(D("60000"), D("0"), 6), D("1"))
    assert kfs.apr == D(f"{float_irr(59400.0, [10000.0] * 6) * 1200:.2f}") and kfs.apr > 0


# --- properties -------------------------------------------------------------------

principals = st.decimals(min_value=1000, max_value=10_000_000, places=2)
rates = st.decimals(min_value=0, max_value=60, places=2)


@st.composite
def loan_terms(draw):
    frequency = draw(st.sampled_from(list(RepaymentFrequency)))
    # Daily 360-month schedules are 10,800 rows: bounded here, covered once above.
    tenure = draw(st.integers(1, 24 if frequency is DAILY else 360))
    return draw(principals), draw(rates), tenure, frequency


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loan_terms())
def test_any_schedule_repays_exactly_the_principal_in_exactly_n_instalments(terms):
    principal, rate, tenure, frequency = terms
    schedule = build_schedule(principal, rate, tenure, frequency)
    rows = schedule.instalments
    assert len(rows) == frequency.instalments(tenure)
    assert sum(r.principal for r in rows) == principal
    assert rows[-1].closing_balance == D("0.00")
    assert rows[-1].principal > 0  # the last instalment is not empty: nothing closed early
    assert all(r.closing_balance > 0 for r in rows[:-1])
    assert all(r.principal >= 0 and r.interest >= 0 for r in rows)
    assert all(r.payment == schedule.emi for r in rows[:-1])
    assert all(a.closing_balance == b.opening_balance for a, b in zip(rows, rows[1:], strict=False))
    assert all(r.opening_balance - r.principal == r.closing_balance for r in rows)
    assert schedule.emi <= emi(principal, rate, tenure, frequency)
    assert all(r.payment.as_tuple().exponent == -2 for r in rows)


@settings(max_examples=60, deadline=None)
@given(loan_terms(), st.decimals(min_value=0, max_value=10, places=2))
def test_any_kfs_is_consistent(terms, fee_pct):
    principal, rate, tenure, frequency = terms
    schedule = build_schedule(principal, rate, tenure, frequency)
    kfs = key_fact_statement(schedule, fee_pct)
    assert kfs.net_disbursed + kfs.processing_fee == principal
    assert kfs.total_payable == sum(r.payment for r in schedule.instalments)
    assert kfs.apr >= 0 and kfs.effective_annual_rate >= kfs.apr
    if fee_pct > 0 and kfs.processing_fee > 0:
        assert kfs.apr >= (rate - D("0.01"))
    assert math.isfinite(float(kfs.apr))
