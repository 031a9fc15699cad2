"""The APR's IRR by Newton's method gives the figures the 100-step bisection it replaced gave: the
bisection is kept here as the reference, and the APR and effective rate must match to the paisa
(and the periodic rate to 1e-30) over many products and terms."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal, localcontext

import pytest

from app.domain.loan_schedule import (
    PRECISION,
    InvalidLoanTerms,
    RepaymentFrequency,
    _bisect,
    _runs,
    build_schedule,
    key_fact_statement,
    periodic_irr,
)
from app.domain.money import HUNDRED, percent_of, round_money

D = Decimal


def reference_irr(received: Decimal, payments: Sequence[Decimal]) -> Decimal:
    """The bisection the KFS used before, the present value summed period by period (Horner's rule)
    instead of by geometric series."""
    def present_value(rate: Decimal) -> Decimal:
        value, v = D(0), 1 / (1 + rate)
        for payment in reversed(payments):
            value = (value + payment) * v
        return value

    with localcontext(prec=PRECISION):
        if sum(payments, D(0)) <= received:
            return D(0)
        low, high = D(0), D("0.01")
        while present_value(high) > received:
            low, high = high, high * 2
        for _ in range(100):
            middle = (low + high) / 2
            low, high = (middle, high) if present_value(middle) > received else (low, middle)
        return (low + high) / 2


TERMS = [
    (amount, rate, tenure, frequency, fee)
    for amount, rate, (tenure, frequency), fee in itertools.product(
        [D("1000.00"), D("50000.37"), D("3000000.00")], [D(0), D("8.5"), D("12"), D("36"), D("60")],
        [(1, RepaymentFrequency.MONTHLY), (36, RepaymentFrequency.MONTHLY), (360, RepaymentFrequency.MONTHLY),
         (13, RepaymentFrequency.WEEKLY), (120, RepaymentFrequency.WEEKLY), (3, RepaymentFrequency.DAILY)],
        [D(0), D("0.5"), D("2.5"), D(10)])
]


@pytest.mark.parametrize("amount, rate, tenure, frequency, fee", TERMS)
def test_newton_gives_the_bisections_apr(amount, rate, tenure, frequency, fee):
    try:
        schedule = build_schedule(amount, rate, tenure, frequency)
    except InvalidLoanTerms:
        pytest.skip("beyond the total-payment limit")
    payments = [i.payment for i in schedule.instalments]
    received = amount - percent_of(amount, fee)
    expected = reference_irr(received, payments)
    assert abs(periodic_irr(received, payments) - expected) < D("1e-30")
    kfs = key_fact_statement(schedule, fee)
    per_year = frequency.periods_per_year
    with localcontext(prec=PRECISION):
        assert kfs.apr == round_money(expected * per_year * HUNDRED)
        assert kfs.effective_annual_rate == round_money(((1 + expected) ** per_year - 1) * HUNDRED)


@pytest.mark.parametrize("received, payments", [
    (D("100"), [D("121")]), (D("100"), [D("60"), D("72")]), (D("2985000"), [D("23067.43")] * 359 + [D("23061.18")]),
])  # fmt: skip
def test_the_bisection_fallback_finds_the_same_rate(received, payments):
    with localcontext(prec=PRECISION):
        assert abs(_bisect(_runs(payments), received) - periodic_irr(received, payments)) < D("1e-30")
