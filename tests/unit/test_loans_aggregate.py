"""The `Loan` aggregate: each change returns the new state (status, history, figures, schedule),
refuses a state it cannot leave, and a payment or a pre-closure returns the record to keep."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from app.domain.loan_schedule import RepaymentFrequency, build_schedule, key_fact_statement
from app.domain.loans import (
    NOTHING_OWED,
    Closure,
    InvalidTransition,
    Loan,
    LoanFigures,
    LoanOrigin,
    LoanProduct,
    LoanRepaid,
    LoanStatus,
    LoanType,
    NextDue,
    Overpayment,
    PaidAhead,
    RepaymentKind,
    StatusChange,
    allocate_repayment,
    preclosure_quote,
)
from app.domain.money import InvalidAmount

D = Decimal
OPENED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
PAID_AT = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
PAID_OUT = date(2026, 1, 31)
PRODUCT = LoanProduct(
    bank_id="b1", name="Personal", type=LoanType.PERSONAL, min_amount=D("10000"), max_amount=D("1000000"),
    min_tenure_months=3, max_tenure_months=60, annual_interest_rate=D("12"), processing_fee_pct=D("2"),
    prepayment_charge_pct=D("3"), repayment_frequency=RepaymentFrequency.MONTHLY, min_monthly_income=D("25000"),
    min_age=21, max_age=60, max_foir=D("0.5"), id="p1",
)
SCHEDULE = build_schedule(D("120000.00"), D("12"), 12)


def applied() -> Loan:
    return Loan.open(PRODUCT, user_id="u1", amount=D("120000.00"), tenure_months=12, purpose="Car",
                     status=LoanStatus.APPLIED, origin=LoanOrigin.APPLICATION, by="u1", now=OPENED)


def disbursed() -> Loan:
    return applied().approve(by="a1", now=OPENED).disburse(by="a1", now=LATER, on=PAID_OUT, reference="UTR1")


def test_an_application_carries_its_schedule_and_key_facts():
    loan = applied()
    assert (loan.id, loan.user_id, loan.product_id, loan.product, loan.amount, loan.tenure_months, loan.purpose,
            loan.status, loan.origin) == ("", "u1", "p1", PRODUCT, D("120000.00"), 12, "Car", LoanStatus.APPLIED,
                                          LoanOrigin.APPLICATION)
    assert loan.emi == SCHEDULE.emi and loan.instalments == SCHEDULE.instalments
    assert loan.kfs == key_fact_statement(SCHEDULE, D("2")) and loan.kfs.net_disbursed == D("117600.00")
    assert loan.history == (StatusChange(LoanStatus.APPLIED, OPENED, "u1"),)
    assert (loan.created_at, loan.updated_at, loan.decided_by, loan.rev) == (OPENED, OPENED, None, 0)
    assert loan.figures == NOTHING_OWED and loan.next_due is None  # nothing is owed before the disbursal
    direct = Loan.open(PRODUCT, user_id="u1", amount=D("120000.00"), tenure_months=12, purpose="Car",
                       status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a1", now=OPENED)
    assert direct.decided_by == "a1" and direct.origin == LoanOrigin.DIRECT
    weekly = Loan.open(replace(PRODUCT, repayment_frequency=RepaymentFrequency.WEEKLY), user_id="u1",
                       amount=D("120000.00"), tenure_months=12, purpose="Car", status=LoanStatus.APPLIED,
                       origin=LoanOrigin.APPLICATION, by="u1", now=OPENED)
    assert weekly.instalments == build_schedule(D("120000.00"), D("12"), 12, RepaymentFrequency.WEEKLY).instalments
    assert len(weekly.instalments) == weekly.kfs.instalments > 12


def test_approving_and_rejecting_record_who_and_why():
    approved = applied().approve(by="a1", now=LATER)
    assert (approved.status, approved.decided_by, approved.updated_at) == (LoanStatus.APPROVED, "a1", LATER)
    assert approved.history[-1] == StatusChange(LoanStatus.APPROVED, LATER, "a1") and len(approved.history) == 2
    rejected = applied().reject(by="a2", reason="Income not verified", now=LATER)
    assert (rejected.status, rejected.decided_by, rejected.rejection_reason) == \
        (LoanStatus.REJECTED, "a2", "Income not verified")
    assert rejected.history[-1] == StatusChange(LoanStatus.REJECTED, LATER, "a2", "Income not verified")


@pytest.mark.parametrize("change", [
    lambda loan: loan.approve(by="a", now=LATER),
    lambda loan: loan.reject(by="a", reason="x", now=LATER),
    lambda loan: loan.disburse(by="a", now=LATER, on=PAID_OUT, reference="R"),
])
def test_a_change_from_the_wrong_state_is_refused_and_names_both(change):
    loan = disbursed()
    with pytest.raises(InvalidTransition) as refused:
        change(loan)
    assert refused.value.details["current"] == "DISBURSED"


def test_disbursing_pays_out_the_net_amount_and_dates_the_schedule():
    loan = disbursed()
    assert (loan.status, loan.disbursed_on, loan.net_disbursed, loan.payout_reference) == \
        (LoanStatus.DISBURSED, PAID_OUT, D("117600.00"), "UTR1")
    assert loan.history[-1] == StatusChange(LoanStatus.DISBURSED, LATER, "a1", "UTR1")
    assert loan.instalments == SCHEDULE.with_due_dates(PAID_OUT).instalments
    assert [r.due_date for r in loan.instalments[:2]] == [date(2026, 2, 28), date(2026, 3, 31)]
    first = loan.instalments[0]
    assert loan.figures == LoanFigures(sum(r.payment for r in SCHEDULE.instalments), D("120000.00"),
                                       NextDue(1, date(2026, 2, 28), first.payment))


def test_a_payment_returns_the_new_state_and_its_record():
    loan = replace(disbursed(), id="L1", rev=3)
    paid, record = loan.apply_payment(D("15000"), by="u1", now=PAID_AT)
    expected = allocate_repayment(loan.instalments, D("15000.00"))
    assert paid.instalments == expected.instalments and paid.status == LoanStatus.DISBURSED
    assert (paid.schedule_paid, paid.paid_total, paid.updated_at, paid.history) == \
        (D("15000.00"), D("15000.00"), PAID_AT, loan.history)
    assert paid.outstanding == expected.outstanding and paid.next_due == NextDue(2, date(2026, 3, 31),
                                                                                  paid.instalments[1].amount_left)
    assert (record.id, record.loan_id, record.user_id, record.kind, record.amount, record.allocations,
            record.outstanding_after, record.paid_at, record.recorded_by) == \
        ("", "L1", "u1", RepaymentKind.INSTALMENT, D("15000.00"), expected.allocations, expected.outstanding, PAID_AT,
         "u1")
    # Read back, the loan rebuilds the same rows from what it keeps.
    assert replace(paid, instalments=()).with_schedule().instalments == paid.instalments


def test_paying_the_last_instalment_closes_the_loan():
    loan = disbursed()
    closed, record = loan.apply_payment(loan.outstanding, by="u1", now=LATER)
    assert (closed.status, closed.closure, closed.closed_at) == (LoanStatus.CLOSED, Closure.REPAID, LATER)
    assert closed.history[-1] == StatusChange(LoanStatus.CLOSED, LATER, "u1", "repaid")
    assert closed.figures == NOTHING_OWED and record.outstanding_after == 0
    with pytest.raises(InvalidTransition):
        closed.apply_payment(D(1), by="u1", now=LATER)


def test_a_payment_is_refused_before_the_disbursal_above_the_outstanding_and_below_a_paisa():
    with pytest.raises(InvalidTransition) as refused:
        applied().approve(by="a", now=LATER).apply_payment(D(100), by="u1", now=LATER)
    assert refused.value.details == {"current": "APPROVED"}
    assert refused.value.message == "The loan is APPROVED; only a disbursed, open loan takes repayments."
    loan = disbursed()
    with pytest.raises(Overpayment):
        loan.apply_payment(loan.outstanding + D("0.01"), by="u1", now=LATER)
    with pytest.raises(InvalidAmount):
        loan.apply_payment(D("10.005"), by="u1", now=LATER)


def test_a_loan_read_for_a_list_shows_the_figures_stored_beside_it_once_disbursed():
    stored = LoanFigures(D(5), D(4), None)
    assert replace(disbursed(), instalments=(), listed=stored).figures == stored
    assert replace(applied(), listed=stored).figures == NOTHING_OWED
    # A rebuilt schedule's figures are its own, never the stored ones.
    assert replace(disbursed(), listed=stored).with_schedule().figures == disbursed().figures != stored


def test_a_paisa_paid_is_allocated_when_the_schedule_is_rebuilt():
    loan = replace(disbursed(), schedule_paid=D("0.50")).with_schedule()
    assert loan.instalments[0].interest_paid == D("0.50") and loan.outstanding == disbursed().outstanding - D("0.50")


def test_a_schedule_that_no_longer_gives_the_agreed_kfs_is_refused_loudly():
    loan = applied()
    with pytest.raises(RuntimeError, match="^the schedule rules no longer give the loan's agreed KFS$"):
        replace(loan, kfs=replace(loan.kfs, emi=D("1.00"))).with_schedule()
    with pytest.raises(RuntimeError):
        replace(loan, kfs=replace(loan.kfs, total_interest=D("1.00"))).with_schedule()
    with pytest.raises(RuntimeError):
        replace(loan, kfs=replace(loan.kfs, instalments=11)).with_schedule()
    assert loan.with_schedule().instalments == SCHEDULE.instalments


def test_a_quote_exists_only_once_disbursed():
    with pytest.raises(InvalidTransition) as refused:
        applied().approve(by="a", now=LATER).quote(date(2026, 3, 1))
    assert refused.value.details == {"current": "APPROVED"}
    assert refused.value.message == "The loan is APPROVED; a pre-closure quote exists only for a DISBURSED loan."
    with pytest.raises(InvalidTransition):  # a state no change makes, refused all the same
        replace(disbursed(), disbursed_on=None).quote(date(2026, 3, 1))
    loan = disbursed()
    assert loan.quote(date(2026, 3, 10)) == preclosure_quote(loan.instalments, D("12"), D("3"), PAID_OUT,
                                                             date(2026, 3, 10))


def test_requesting_a_preclosure_keeps_the_quote_of_the_day():
    loan = disbursed()
    requested, quote = loan.request_preclosure(on=date(2026, 3, 10), by="u1", now=LATER)
    assert requested.status == LoanStatus.PRE_CLOSURE_REQUESTED and requested.history[-1] == \
        StatusChange(LoanStatus.PRE_CLOSURE_REQUESTED, LATER, "u1")
    assert requested.preclosure_quote == quote.record()
    assert quote.record()["quote_date"] == "2026-03-10" and quote.record()["accrued_from"] == "2026-02-28"
    assert requested.outstanding == loan.outstanding  # still owed until the admin confirms
    with pytest.raises(InvalidTransition):
        requested.request_preclosure(on=date(2026, 3, 10), by="u1", now=LATER)


def test_a_loan_whose_preclosure_is_asked_runs_on_until_confirmed():
    """The request settles nothing: instalments fall due (days past due, the class) and take payments; paying
    the last one closes the loan as repaid."""
    requested, _ = disbursed().request_preclosure(on=date(2026, 2, 1), by="u1", now=LATER)
    first_due = requested.instalments[0].due_date
    assert first_due == date(2026, 2, 28) and requested.dpd_on(date(2026, 3, 10)) == 10
    assert requested.assessed(date(2026, 3, 10)).arrears.overdue == requested.instalments[0].payment
    first = requested.instalments[0].payment
    march = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    with pytest.raises(PaidAhead) as ahead:  # the quote settles the rest, not payments ahead
        requested.apply_payment(first + D("0.01"), by="u1", now=march)
    assert ahead.value.details == {"due_now": str(first)}
    paid, _ = requested.apply_payment(first, by="u1", now=march)
    assert paid.status == LoanStatus.PRE_CLOSURE_REQUESTED and paid.dpd_on(march.date()) == 0
    after_the_last = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)  # every instalment due: all of it may be paid
    paid, record = paid.apply_payment(paid.outstanding, by="u1", now=after_the_last)
    assert (paid.status, paid.closure, record.outstanding_after) == (LoanStatus.CLOSED, Closure.REPAID, 0)
    assert [c.status for c in paid.history[-2:]] == [LoanStatus.PRE_CLOSURE_REQUESTED, LoanStatus.CLOSED]
    assert LoanStatus.PRE_CLOSURE_REQUESTED.is_running and not LoanStatus.CLOSED.is_running
    assert not LoanStatus.APPROVED.is_running and LoanStatus.DISBURSED.is_running


def test_confirming_a_preclosure_closes_the_loan_with_its_final_payment():
    loan = disbursed()
    paid, _ = loan.apply_payment(D("1000.00"), by="u1", now=LATER)
    requested, _ = paid.request_preclosure(on=date(2026, 3, 10), by="u1", now=LATER)
    requested = replace(requested, id="L1")
    closed, record = requested.close_preclosed(on=date(2026, 3, 12), by="a1", now=LATER)
    quote = requested.quote(date(2026, 3, 12))
    assert (closed.status, closed.closure, closed.closed_at) == (LoanStatus.CLOSED, Closure.PRE_CLOSED, LATER)
    assert closed.history[-1] == StatusChange(LoanStatus.CLOSED, LATER, "a1", "pre_closed")
    assert closed.paid_total == D("1000.00") + quote.foreclosure_amount and closed.schedule_paid == D("1000.00")
    assert closed.preclosure_quote == quote.record() and closed.figures == NOTHING_OWED
    assert (record.id, record.loan_id, record.user_id, record.kind, record.amount, record.allocations,
            record.outstanding_after, record.paid_at, record.recorded_by, record.breakdown) == \
        ("", "L1", "u1", RepaymentKind.PRE_CLOSURE, quote.foreclosure_amount, (), 0, LATER, "a1", quote.record())


def test_only_a_requested_preclosure_can_be_confirmed():
    with pytest.raises(InvalidTransition) as refused:
        disbursed().close_preclosed(on=date(2026, 3, 12), by="a1", now=LATER)
    assert refused.value.details == {"current": "DISBURSED", "target": "CLOSED"}
    assert refused.value.message == "Only a loan whose pre-closure was requested can be closed here."
    with pytest.raises(InvalidTransition):
        applied().close_preclosed(on=date(2026, 3, 12), by="a1", now=LATER)


def test_a_repaid_loan_has_no_quote():
    loan = disbursed()
    everything = replace(loan, schedule_paid=loan.outstanding).with_schedule()
    with pytest.raises(LoanRepaid):
        everything.quote(date(2026, 3, 10))


def test_only_the_daily_reviews_fields_moving_counts_as_reviewed_only():
    loan = disbursed()
    reviewed = replace(loan, arrears=replace(loan.arrears, reminded="1:-3", overdue=D("10")), rev=loan.rev + 1)
    assert reviewed.reviewed_only_since(loan)
    paid, _ = loan.apply_payment(D("1000"), by="u1", now=PAID_AT)
    assert not paid.reviewed_only_since(loan)  # money paid
    assert not replace(loan, schedule_paid=D("1")).reviewed_only_since(loan)
    assert not replace(loan, preclosure_quote={"amount": "1"}).reviewed_only_since(loan)
    assert not loan.reviewed_only_since(applied())  # status
