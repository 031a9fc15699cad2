"""A loan closed early states what was due up to its closure and nothing after: the closing payment
settled the rest, so no row of the statement is still due."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.domain.delinquency import ClassChange, LoanClass, PenalKind, PenalRule
from app.domain.loan_schedule import RepaymentFrequency
from app.domain.loans import Loan, LoanOrigin, LoanStatus
from app.domain.prepayment import exit_cooling_off
from app.domain.statements import entries
from app.services.catalogue import product_of
from tests.integration.lending_helpers import TERMS

START = datetime(2026, 12, 6, tzinfo=UTC)


def _disbursed() -> Loan:
    product = replace(product_of({**TERMS, "bank_id": "b" * 24}), id="a" * 24)
    loan = Loan.open(product, user_id="u", amount=Decimal(100000), tenure_months=12, purpose="Home",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a", now=START)
    return replace(loan, id="c" * 24).disburse(by="a", now=START, on=START.date(), reference="UTR1")


def _instalments(loan: Loan, repayments) -> list:
    return [e for e in entries(loan, repayments) if e.entry == "instalment"]


def test_a_loan_pre_closed_after_a_missed_instalment_states_it_settled_and_no_later_rows():
    loan = _disbursed()
    first_due = loan.instalments[0].due_date
    assert first_due is not None
    on = first_due + timedelta(days=10)  # instalment 1 unpaid, 2 not yet due
    now = datetime.combine(on, START.timetz())
    asked, _ = loan.request_preclosure(on=on, by="u", now=now)
    closed, final = asked.close_preclosed(on=on, by="a", now=now)
    rows = _instalments(closed, [replace(final, id="p1")])
    assert [(r.reference, r.due, r.description) for r in rows] == [
        ("1/12", Decimal(0), "Instalment 1 of 12, settled by the pre-closure")]
    assert rows[0].paid == 0  # nothing was paid on it as an instalment: the pre-closure paid it
    closing = entries(closed, [replace(final, id="p1")])[-1]
    assert (closing.entry, closing.outstanding_after) == ("pre_closure", 0)
    # Nothing overdue once closed; the class is current again, from the closing day.
    assert asked.arrears.loan_class == LoanClass.SMA_0 and asked.arrears.overdue > 0
    assert (closed.arrears.overdue, closed.arrears.loan_class, closed.arrears.history[-1]) == (
        0, LoanClass.CURRENT, ClassChange(LoanClass.CURRENT, on, 0))


def test_a_cooling_off_exit_waives_a_penal_charge_and_leaves_nothing_due():
    """RBI (digital lending): the exit is without penalty. A weekly loan with a 15-day cooling-off period
    whose first instalment went unpaid drew a charge; the exit waives it, and no row of the statement is due."""
    product = replace(product_of({**TERMS, "bank_id": "b" * 24, "repayment_frequency": RepaymentFrequency.WEEKLY,
                                  "cooling_off_days": 15, "penal_charge": PenalRule(PenalKind.FIXED, Decimal(500))}),
                      id="a" * 24)
    loan = Loan.open(product, user_id="u", amount=Decimal(100000), tenure_months=12, purpose="Home",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a", now=START)
    loan = replace(loan, id="c" * 24).disburse(by="a", now=START, on=START.date(), reference="UTR1")
    on = START.date() + timedelta(days=10)  # instalment 1 (day 7) late: charged
    late = loan.assessed(on)
    assert late.arrears.charges_due == 500 and late.arrears.overdue > 0
    closed, final, quote = exit_cooling_off(late, on=on, by="u", now=START + timedelta(days=10))
    assert quote.amount_due == quote.principal + quote.interest  # principal and APR for the days, no penalty
    assert (closed.arrears.charges_due, closed.arrears.overdue, closed.arrears.charges[0].waived) == (0, 0, 500)
    rows = entries(closed, [replace(final, id="p1")])
    assert all(not r.due for r in rows) and [r.description for r in rows if r.entry == "instalment"] == [
        "Instalment 1 of 52, settled by the cooling-off exit"]


def test_a_cooling_off_exit_states_no_instalment_and_a_loan_open_states_every_one_due():
    loan = _disbursed()
    on = START.date() + timedelta(days=2)
    closed, final, _ = exit_cooling_off(loan, on=on, by="u", now=START + timedelta(days=2))
    assert _instalments(closed, [replace(final, id="p1")]) == []
    open_rows = _instalments(loan, [])
    assert len(open_rows) == 12 and all(r.due == r.amount > 0 for r in open_rows)
    assert [r.description for r in open_rows[:2]] == ["Instalment 1 of 12", "Instalment 2 of 12"]
