"""Arrears rules (app/domain/delinquency.py): the RBI classes at every boundary day, penal charges that are
their own record (never interest, never principal), the order a payment settles, reminders' milestones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.delinquency import (
    Arrears,
    Charge,
    LoanClass,
    PenalKind,
    PenalRule,
    Reminders,
    classify,
    split_payment,
)
from app.domain.loan_schedule import RepaymentFrequency, build_schedule
from app.domain.loans import InvalidLoanProduct, Loan, LoanOrigin, LoanProduct, LoanStatus, LoanType

D = Decimal
PAID_OUT = date(2026, 1, 31)
RULE = PenalRule(PenalKind.PERCENT, D(2), D(150))
PRODUCT = LoanProduct(
    bank_id="b1", name="Personal", type=LoanType.PERSONAL, min_amount=D("10000"), max_amount=D("1000000"),
    min_tenure_months=3, max_tenure_months=60, annual_interest_rate=D("12"), processing_fee_pct=D("2"),
    prepayment_charge_pct=D("3"), repayment_frequency=RepaymentFrequency.MONTHLY, min_monthly_income=D("25000"),
    min_age=21, max_age=60, max_foir=D("0.5"), id="p1", penal_charge=RULE,
)


def at(day: date) -> datetime:
    return datetime.combine(day, time(9), UTC)


def running(product: LoanProduct = PRODUCT, amount: str = "120000.00", tenure: int = 12) -> Loan:
    loan = Loan.open(product, user_id="u1", amount=D(amount), tenure_months=tenure, purpose="Car",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a1", now=at(PAID_OUT))
    return loan.disburse(by="a1", now=at(PAID_OUT), on=PAID_OUT, reference="UTR1")


@pytest.mark.parametrize(("dpd", "expected"), [
    (0, LoanClass.CURRENT), (1, LoanClass.SMA_0), (30, LoanClass.SMA_0), (31, LoanClass.SMA_1),
    (60, LoanClass.SMA_1), (61, LoanClass.SMA_2), (90, LoanClass.SMA_2), (91, LoanClass.NPA), (400, LoanClass.NPA)])
def test_classes_at_each_boundary_day(dpd, expected):
    assert classify(dpd) is expected


@pytest.mark.parametrize(("late", "expected"), [(0, LoanClass.CURRENT), (1, LoanClass.SMA_0), (30, LoanClass.SMA_0),
                                                (31, LoanClass.SMA_1), (60, LoanClass.SMA_1), (61, LoanClass.SMA_2),
                                                (90, LoanClass.SMA_2), (91, LoanClass.NPA)])
def test_a_loan_is_classed_by_days_past_its_oldest_unpaid_instalment(late, expected):
    loan = running()
    first = loan.instalments[0].due_date
    assert first == date(2026, 2, 28)
    today = first + timedelta(days=late)
    assessed = loan.assessed(today)
    assert (assessed.dpd_on(today), assessed.arrears.loan_class) == (late, expected)
    # Every class it passed through on the way is recorded once, with the day it was entered.
    assert [h.loan_class for h in assessed.arrears.history] == ([] if late == 0 else [expected])


def test_a_late_instalment_draws_one_penal_charge_dated_the_day_after_it_however_often_assessed():
    loan = running()
    row = loan.instalments[0]
    assert row.due_date is not None
    once = loan.assessed(row.due_date + timedelta(days=1))
    twice = once.assessed(row.due_date + timedelta(days=5))
    assert row.payment * 2 / 100 > 150  # 2 % of the instalment, capped at 150
    expected = Charge(1, row.due_date + timedelta(days=1), D(150))
    assert once.arrears.charges == twice.arrears.charges == (expected,)
    assert once.arrears.overdue == row.payment
    # Paid on its due date: not late, no charge.
    assert loan.assessed(row.due_date).arrears == Arrears()


def test_penal_charges_fixed_percent_and_capped():
    assert PenalRule(PenalKind.FIXED, D(500)).charge(D(10)) == D(500)
    assert PenalRule(PenalKind.PERCENT, D(2)).charge(D("10653.19")) == D("213.06")
    assert PenalRule(PenalKind.PERCENT, D(2), D(100)).charge(D("10653.19")) == D(100)
    assert PenalRule(PenalKind.FIXED, D(500), D(300)).charge(D(10)) == D(300)


@pytest.mark.parametrize("rule", [PenalRule(PenalKind.PERCENT, D(11)), PenalRule(PenalKind.FIXED, D(-1)),
                                  PenalRule(PenalKind.FIXED, D(1), D(-1))])
def test_a_product_refuses_a_penal_charge_out_of_bounds(rule):
    with pytest.raises(InvalidLoanProduct) as caught:
        replace(PRODUCT, penal_charge=rule).validate()
    assert caught.value.details["errors"][0]["field"] == "penal_charge"


def test_a_payment_settles_the_instalment_due_then_the_charge_then_pays_ahead():
    loan = running()
    first, second = loan.instalments[0], loan.instalments[1]
    assert first.due_date is not None
    today = first.due_date + timedelta(days=3)
    charge = loan.assessed(today).arrears.charges[0].amount
    # Just the instalment: nothing to the charge, the loan is current again and the charge still owed.
    paid, record = loan.apply_payment(first.payment, by="u1", now=at(today))
    assert (record.charges_paid, paid.arrears.loan_class, paid.arrears.charges_due) == (0, LoanClass.CURRENT, charge)
    assert [h.loan_class for h in paid.arrears.history] == [LoanClass.SMA_0, LoanClass.CURRENT]
    # Then the charge, then the next instalment ahead of its date.
    paid, record = paid.apply_payment(charge + D(10), by="u1", now=at(today))
    assert (record.charges_paid, paid.arrears.charges_due) == (charge, 0)
    assert paid.instalments[1].interest_paid + paid.instalments[1].principal_paid == D(10)
    assert paid.instalments[1].interest == second.interest  # the charge never moved the schedule


def test_the_last_instalment_paid_with_a_charge_unpaid_keeps_the_loan_open_until_the_charge_is_paid():
    loan = running(tenure=3, amount="30000.00")
    last = loan.instalments[-1]
    assert last.due_date is not None
    today = last.due_date + timedelta(days=2)
    charges = loan.assessed(today).arrears.charges
    assert len(charges) == 3
    paid, _ = loan.apply_payment(loan.outstanding, by="u1", now=at(today))
    assert (paid.status, paid.outstanding, paid.arrears.loan_class) == (LoanStatus.DISBURSED, 0, LoanClass.CURRENT)
    closed, record = paid.apply_payment(paid.arrears.charges_due, by="u1", now=at(today))
    assert (closed.status, record.charges_paid) == (LoanStatus.CLOSED, sum(c.amount for c in charges))


@pytest.mark.parametrize(("days", "expected"), [(-4, None), (-3, -3), (0, -3), (1, 1), (6, 1), (7, 7), (29, 7),
                                                (30, 30), (400, 30)])
def test_reminders_the_latest_milestone_reached(days, expected):
    due = date(2026, 3, 1)
    assert Reminders(3, (1, 7, 30)).due(due, due + timedelta(days=days)) == expected


def test_a_before_reminder_is_never_sent_once_late():
    due = date(2026, 3, 1)
    assert Reminders(3, ()).due(due, due + timedelta(days=2)) is None


def test_a_before_reminder_only_when_instalments_are_further_apart_than_its_window():
    due, reminders = date(2026, 3, 1), Reminders(3, (1, 7, 30))
    days_apart = {f: f.days_apart for f in RepaymentFrequency}
    assert days_apart == {RepaymentFrequency.MONTHLY: 28, RepaymentFrequency.WEEKLY: 7, RepaymentFrequency.DAILY: 1}
    assert reminders.due(due, due - timedelta(days=3), days_apart=7) == -3  # weekly: the day's reminder
    assert reminders.due(due, due - timedelta(days=3), days_apart=4) == -3
    assert reminders.due(due, due - timedelta(days=3), days_apart=3) is None  # the window is the whole gap
    assert reminders.due(due, due, days_apart=1) is None  # daily: not a mail every day
    assert reminders.due(due, due + timedelta(days=1), days_apart=1) == 1  # late: reminded all the same


# --- properties ----------------------------------------------------------------------------

payments = st.lists(st.tuples(st.integers(0, 400), st.integers(1, 3_000_000)), min_size=1, max_size=8)


def _walk(loan: Loan, steps: list[tuple[int, int]]) -> tuple[Loan, Decimal, Decimal]:
    """Pays on the given days after disbursal (each a paise amount, capped at what is owed)."""
    paid_total = to_charges = D(0)
    day = PAID_OUT
    for offset, paise in steps:
        day = day + timedelta(days=offset)
        owed = loan.outstanding + loan.assessed(day).arrears.charges_due
        if loan.status != LoanStatus.DISBURSED or owed == 0:
            break
        amount = min(D(paise) / 100, owed)
        loan, record = loan.apply_payment(amount, by="u1", now=at(day))
        paid_total += amount
        to_charges += record.charges_paid
    return loan, paid_total, to_charges


@settings(max_examples=60, deadline=None)
@given(steps=payments, kind=st.sampled_from(list(PenalKind)), value=st.integers(0, 1000))
def test_charges_never_bear_interest_and_every_rupee_is_accounted_for(steps, kind, value):
    rule = PenalRule(kind, D(value) if kind is PenalKind.FIXED else D(value) / 100)
    loan, paid_total, to_charges = _walk(running(replace(PRODUCT, penal_charge=rule)), steps)
    plain = build_schedule(D("120000.00"), D(12), 12, RepaymentFrequency.MONTHLY, PAID_OUT)
    # No interest on a charge and never in the principal: the schedule is the one agreed, row for row.
    assert [(r.interest, r.principal) for r in loan.instalments] == [(r.interest, r.principal) for r in plain.instalments]
    assert loan.outstanding_principal == sum(r.principal - r.principal_paid for r in loan.instalments)
    # Conserved: what was paid is exactly what the schedule and the charges received.
    schedule_paid = sum(r.interest_paid + r.principal_paid for r in loan.instalments)
    assert schedule_paid + to_charges == paid_total == loan.paid_total
    assert to_charges == sum(c.paid for c in loan.arrears.charges)
    assert all(0 <= c.paid <= c.amount for c in loan.arrears.charges)


@settings(max_examples=80, deadline=None)
@given(offset=st.integers(0, 200), paise=st.integers(1, 5_000_000), earlier=st.integers(0, 2_000_000))
def test_a_payment_settles_what_is_due_before_charges_and_charges_before_paying_ahead(offset, paise, earlier):
    loan = running()
    if earlier:  # a part payment earlier leaves some rows part-paid
        loan, _ = loan.apply_payment(min(D(earlier) / 100, loan.outstanding), by="u1", now=at(PAID_OUT))
    today = PAID_OUT + timedelta(days=offset)
    levied = loan.assessed(today)
    due = sum(r.amount_left for r in levied.instalments if r.due_date and r.due_date <= today)
    charges = levied.arrears.charges_due
    amount = min(D(paise) / 100, levied.outstanding + charges)
    if loan.status != LoanStatus.DISBURSED or amount <= 0:
        return
    to_schedule, settled = split_payment(levied.instalments, levied.arrears.charges, amount, today)
    to_charges = amount - to_schedule
    assert to_charges == min(max(amount - due, D(0)), charges)  # charges only once all that is due is paid
    assert to_schedule - min(amount, due) == max(amount - due - charges, D(0))  # ahead only once charges are paid
    # Oldest charge first.
    paid_flags = [c.paid > 0 for c in settled]
    assert paid_flags == sorted(paid_flags, reverse=True)


def test_a_preclosure_quote_settles_unpaid_penal_charges_without_interest_on_them():
    loan = running()
    first = loan.instalments[0]
    assert first.due_date is not None
    today = first.due_date + timedelta(days=10)
    plain = running(replace(PRODUCT, penal_charge=None)).quote(today)
    quote = loan.quote(today)
    assert quote.penal_charges == 150 and quote.foreclosure_amount == plain.foreclosure_amount + 150
    assert (quote.accrued_interest, quote.overdue_interest) == (plain.accrued_interest, plain.overdue_interest)
    requested, _ = loan.request_preclosure(on=today, by="u1", now=at(today))
    closed, record = requested.close_preclosed(on=today, by="a1", now=at(today))
    assert (record.amount, record.charges_paid, closed.arrears.charges_due) == (quote.foreclosure_amount, 150, 0)
