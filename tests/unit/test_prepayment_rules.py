"""Part-prepayment and the cooling-off exit (`app.domain.prepayment`): rebuilt schedules that repay exactly
the principal, the bounds, the RBI charge exemption, and the exit's figures against a hand computation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.loan_schedule import KeepTerm, RepaymentFrequency, build_schedule
from app.domain.loans import (
    Closure,
    InvalidLoanProduct,
    InvalidTransition,
    Loan,
    LoanOrigin,
    LoanProduct,
    LoanStatus,
    LoanType,
    RateType,
    RepaymentKind,
    cooling_off_minimum,
)
from app.domain.prepayment import (
    CoolingOffEnded,
    InstalmentsOverdue,
    PrepaymentOutOfRange,
    cooling_off_quote,
    exit_cooling_off,
    prepay,
    prepayment_quote,
)

D = Decimal
NOW = datetime(2026, 1, 10, 9, tzinfo=UTC)
DAY0 = date(2026, 1, 10)
PRODUCT = LoanProduct(
    bank_id="b1", name="Personal", type=LoanType.PERSONAL, min_amount=D(1000), max_amount=D(5000000),
    min_tenure_months=1, max_tenure_months=120, annual_interest_rate=D(12), processing_fee_pct=D(2),
    prepayment_charge_pct=D(4), repayment_frequency=RepaymentFrequency.MONTHLY, min_monthly_income=D(0),
    min_age=18, max_age=70, max_foir=D("0.5"), id="p1", min_prepayment=D("0.01"))


def disbursed(amount: D = D(100000), months: int = 12, **terms: object) -> Loan:
    product = replace(PRODUCT, **terms)  # type: ignore[arg-type]
    loan = Loan.open(product, user_id="u1", amount=amount, tenure_months=months, purpose="Home renovation",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a1", now=NOW)
    return loan.disburse(by="a1", now=NOW, on=DAY0, reference="UTR-1")


def _pay(loan: Loan, amount: D) -> Loan:
    return loan.apply_payment(amount, by="u1", now=NOW)[0]


def _check_rows(loan: Loan, prepaid: D) -> None:
    rows = loan.instalments
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    assert sum((r.principal for r in rows), D(0)) + prepaid == loan.amount  # principal repaid is the principal
    for r in rows:
        assert r.opening_balance >= 0 and r.principal >= 0 and r.interest >= 0 and r.closing_balance >= 0
        assert r.closing_balance == r.opening_balance - r.principal
    assert rows[-1].closing_balance == 0
    assert all(r.due_date == RepaymentFrequency(loan.frequency).due_date(DAY0, r.number) for r in rows)


def test_keeping_the_tenure_lowers_the_instalment_over_the_same_count():
    loan = _pay(disbursed(), D("8884.88"))  # instalment 1 paid on time
    after, payment, quote = prepay(loan, D(20000), KeepTerm.TENURE, on=date(2026, 2, 20), by="u1", now=NOW)
    closing_1 = build_schedule(D(100000), D(12), 12).instalments[0].closing_balance
    rebuilt = build_schedule(closing_1 - 20000, D(12), 11)  # the same rules over the balance left: 11 rows
    assert len(after.instalments) == 12 and after.emi == rebuilt.emi == quote.emi_after < loan.emi
    assert [(r.interest, r.principal) for r in after.instalments[1:]] == [
        (r.interest, r.principal) for r in rebuilt.instalments]
    assert after.instalments[0] == loan.instalments[0]  # the paid row is kept as it was
    accrued = (D(20000) * 12 / 100 * 10 / 365).quantize(D("0.01"))  # 10 days since the due date of 10 Feb
    assert (quote.accrued_days, quote.accrued_interest, quote.prepayment_charge) == (10, accrued, D(800))
    assert payment.kind == RepaymentKind.PREPAYMENT and payment.amount == D(20000) + accrued + 800
    assert after.paid_total == loan.paid_total + payment.amount
    assert after.outstanding_principal == closing_1 - 20000
    version = after.schedule_versions[0]
    assert (version.first, version.previous_emi, version.previous_count, version.count) == (2, D("8884.88"), 11, 11)
    _check_rows(after, D(20000))


def test_keeping_the_instalment_shortens_the_tenure():
    loan = _pay(disbursed(), D("8884.88"))
    after, _, quote = prepay(loan, D(20000), KeepTerm.INSTALMENT, on=date(2026, 2, 20), by="u1", now=NOW)
    assert after.emi == loan.emi and len(after.instalments) == 10 and quote.instalments_after == 9
    assert all(r.payment == loan.emi for r in after.instalments[1:-1]) and after.instalments[-1].payment <= loan.emi
    assert quote.last_due_date == after.instalments[-1].due_date == date(2026, 11, 10)
    _check_rows(after, D(20000))


def test_a_second_rebuild_keeps_the_first_and_the_schedule_is_reproduced_from_what_is_stored():
    loan = disbursed()
    once = prepay(loan, D(10000), KeepTerm.INSTALMENT, on=date(2026, 1, 20), by="u1", now=NOW)[0]
    twice = prepay(_pay(once, once.emi), D(10000), KeepTerm.TENURE, on=date(2026, 2, 15), by="u1", now=NOW)[0]
    assert len(twice.schedule_versions) == 2 and twice.schedule_versions[1].previous_count == len(once.instalments) - 1
    assert replace(twice, instalments=()).with_schedule().instalments == twice.instalments
    _check_rows(twice, D(20000))
    # The agreed schedule's cache is not touched: a new loan on the same terms gets the agreed rows.
    assert disbursed().instalments == loan.instalments


def test_no_charge_on_a_floating_rate_loan_for_a_purpose_other_than_business():
    on = date(2026, 1, 20)
    assert prepayment_quote(disbursed(rate_type=RateType.FLOATING), D(10000), KeepTerm.TENURE, on).prepayment_charge == 0
    business = disbursed(rate_type=RateType.FLOATING, type=LoanType.BUSINESS)
    assert prepayment_quote(business, D(10000), KeepTerm.TENURE, on).prepayment_charge == 400
    assert prepayment_quote(disbursed(), D(10000), KeepTerm.TENURE, on).prepayment_charge == 400  # fixed rate
    # Pre-closure follows the same rule.
    assert disbursed(rate_type=RateType.FLOATING).quote(on).prepayment_charge == 0


def test_bounds_overdue_and_state():
    loan = disbursed(min_prepayment=D(5000))
    on = date(2026, 1, 20)
    with pytest.raises(PrepaymentOutOfRange) as small:
        prepayment_quote(loan, D("4999.99"), KeepTerm.TENURE, on)
    assert small.value.details["minimum"] == "5000"
    with pytest.raises(PrepaymentOutOfRange, match="pre-close"):
        prepayment_quote(loan, D(100000), KeepTerm.TENURE, on)  # all of it: a pre-closure
    assert prepayment_quote(loan, D("99999.99"), KeepTerm.INSTALMENT, on).principal_after == D("0.01")
    with pytest.raises(InstalmentsOverdue) as late:
        prepayment_quote(loan, D(5000), KeepTerm.TENURE, date(2026, 2, 11))  # instalment 1 unpaid
    assert late.value.details["instalments"] == [1]
    requested = loan.request_preclosure(on=on, by="u1", now=NOW)[0]
    with pytest.raises(InvalidTransition):
        prepayment_quote(requested, D(5000), KeepTerm.TENURE, on)


def test_rows_paid_ahead_or_in_part_are_kept_and_the_balance_after_them_is_rebuilt():
    loan = _pay(disbursed(), D(10000))  # instalment 1 and part of 2, ahead of their dates
    after, _, quote = prepay(loan, D(5000), KeepTerm.TENURE, on=date(2026, 1, 20), by="u1", now=NOW)
    assert quote.first_instalment == 3 and quote.accrued_days == 0  # the kept rows charge its interest already
    assert after.instalments[:2] == loan.instalments[:2] and after.schedule_paid == loan.schedule_paid
    _check_rows(after, D(5000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=st.integers(1000, 5_000_000), months=st.integers(1, 120), rate=st.sampled_from(["0", "9.5", "12", "36"]),
       frequency=st.sampled_from(list(RepaymentFrequency)),
       steps=st.lists(st.tuples(st.integers(0, 40), st.floats(0.001, 0.999), st.sampled_from(list(KeepTerm)),
                                st.booleans()), min_size=1, max_size=3))
def test_prepayments_in_either_mode_repay_exactly_the_principal(amount, months, rate, frequency, steps):
    loan = disbursed(D(amount), months, annual_interest_rate=D(rate), repayment_frequency=frequency)
    n, on, prepaid = len(loan.instalments), DAY0, D(0)
    for days, share, keep, pay_first in steps:
        on += timedelta(days=days)
        due = [r for r in loan.instalments if r.due_date <= on and not r.paid]
        if due:  # pay what is due, then perhaps the next row too
            loan = _pay(loan, sum((r.amount_left for r in due), D(0)))
        if pay_first and loan.status == LoanStatus.DISBURSED and loan.next_due:
            loan = _pay(loan, loan.next_due.amount)
        if loan.status != LoanStatus.DISBURSED:
            break
        try:
            quote = prepayment_quote(loan, D(1), keep, on)
        except PrepaymentOutOfRange:
            continue  # nothing left after the rows due or paid
        part = max((quote.principal_before * D(share)).quantize(D("0.01")), D("0.01"))
        if part >= quote.principal_before:
            continue
        before = loan
        loan, _, quote = prepay(loan, part, keep, on=on, by="u1", now=NOW)
        prepaid += part
        kept = quote.first_instalment - 1
        if keep is KeepTerm.TENURE:
            assert len(loan.instalments) == len(before.instalments) <= n
        else:
            assert len(loan.instalments) == kept + quote.instalments_after <= len(before.instalments)
            assert all(r.payment == before.emi for r in loan.instalments[kept:-1])
        _check_rows(loan, prepaid)


# --- cooling-off ----------------------------------------------------------------------------


def test_the_cooling_off_exit_is_principal_and_the_apr_for_the_days_used():
    loan = disbursed()
    quote = cooling_off_quote(loan, DAY0 + timedelta(days=2))
    # By hand: APR 15.85 % (the KFS's), 2 days: 100000 × 0.1585 × 2 / 365 = 86.849… → 86.85.
    assert loan.kfs.apr == D("15.85")
    assert (quote.days_used, quote.principal, quote.interest, quote.amount_due) == (2, 100000, D("86.85"),
                                                                                    D("100086.85"))
    closed, payment, _ = exit_cooling_off(loan, on=DAY0 + timedelta(days=2), by="u1", now=NOW)
    assert closed.status == LoanStatus.CLOSED and closed.closure == Closure.COOLING_OFF_EXIT
    assert closed.outstanding == 0 and payment.kind == RepaymentKind.COOLING_OFF_EXIT
    assert payment.amount == D("100086.85") and payment.breakdown["ends_on"] == "2026-01-13"


def test_payments_made_are_credited_and_the_period_ends_on_its_last_day():
    loan = _pay(disbursed(), D(1000))
    assert cooling_off_quote(loan, DAY0).amount_due == D(99000)  # the same day: no interest
    assert cooling_off_quote(loan, DAY0 + timedelta(days=3)).days_used == 3  # the third day is still in
    with pytest.raises(CoolingOffEnded) as ended:
        cooling_off_quote(loan, DAY0 + timedelta(days=4))
    assert ended.value.details["ended_on"] == "2026-01-13"
    longer = disbursed(cooling_off_days=7)
    assert cooling_off_quote(longer, DAY0 + timedelta(days=7)).days_used == 7


def test_a_product_cooling_off_period_below_the_rbi_minimum_is_refused():
    assert (cooling_off_minimum(6), cooling_off_minimum(7)) == (1, 3)
    with pytest.raises(InvalidLoanProduct) as refused:
        replace(PRODUCT, cooling_off_days=2).validate()
    assert refused.value.details["errors"][0] == {"field": "cooling_off_days",
                                                  "message": "The cooling-off period must be 3 to 30 days."}


def test_an_instalment_due_today_is_kept_and_unpaid_penal_charges_come_first():
    from app.domain.delinquency import Arrears, Charge

    loan = disbursed()
    quote = prepayment_quote(loan, D(5000), KeepTerm.TENURE, date(2026, 2, 10))  # instalment 1 falls due today
    assert quote.first_instalment == 2 and quote.accrued_days == 0
    charged = replace(_pay(loan, D("8884.88")), arrears=Arrears(charges=(Charge(1, date(2026, 2, 11), D(100)),)))
    with pytest.raises(InstalmentsOverdue) as refused:
        prepayment_quote(charged, D(5000), KeepTerm.TENURE, date(2026, 2, 20))
    assert refused.value.details == {"instalments": [], "charges_due": "100.00"}


def test_the_loan_view_of_a_rebuilt_schedule_and_of_a_new_loan_on_the_agreed_terms():
    import json

    from app.api.schemas.loans import LoanDetail
    from tests.unit._kfs_helpers import kfs_of

    loan = replace(disbursed(), id="L1")
    agreed = json.loads(LoanDetail.body(loan, [], kfs=kfs_of(loan)))["schedule"]
    prepaid = prepay(loan, D(30000), KeepTerm.INSTALMENT, on=DAY0, by="u1", now=NOW)[0]
    for _ in range(2):  # written from memo the second time: still the rebuilt rows
        body = json.loads(LoanDetail.body(prepaid, [], kfs=kfs_of(prepaid)))
        assert [r["payment"] for r in body["schedule"]] == [float(r.payment) for r in prepaid.instalments]
        assert body["schedule_versions"][0]["instalments"] == len(prepaid.instalments) < 12
    again = replace(disbursed(), id="L2")
    assert json.loads(LoanDetail.body(again, [], kfs=kfs_of(again)))["schedule"] == agreed and again.instalments == loan.instalments


def test_a_shortened_count_is_the_fewest_instalments_that_repay_and_never_above_the_cap():
    from app.domain.loan_schedule import shortened_count

    assert shortened_count(D(200), D(0), D(100), 5) == 2  # two instalments exactly: no third of 0
    assert shortened_count(D("200.01"), D(0), D(100), 5) == 3
    assert shortened_count(D(100), D(0), D(100), 5) == 1
    assert shortened_count(D(1000), D(0), D(100), 4) == 4  # the cap: the last takes what is left
    assert shortened_count(D(1000), D("0.01"), D(500), 9) == 3  # 1000 → 510 → 15.10 + 0.15


def test_wire_values_and_product_defaults():
    from app.domain.loans import MIN_PREPAYMENT

    assert [k.value for k in KeepTerm] == ["tenure", "instalment"]
    assert [r.value for r in RateType] == ["fixed", "floating"]
    assert (Closure.COOLING_OFF_EXIT.value, RepaymentKind.PREPAYMENT.value, RepaymentKind.COOLING_OFF_EXIT.value) == (
        "cooling_off_exit", "prepayment", "cooling_off_exit")
    plain = LoanProduct(**{f: getattr(PRODUCT, f) for f in (
        "bank_id", "name", "type", "min_amount", "max_amount", "min_tenure_months", "max_tenure_months",
        "annual_interest_rate", "processing_fee_pct", "prepayment_charge_pct", "repayment_frequency",
        "min_monthly_income", "min_age", "max_age", "max_foir")})
    assert (plain.rate_type, plain.cooling_off_days, plain.min_prepayment) == (RateType.FIXED, 3, MIN_PREPAYMENT)
    assert MIN_PREPAYMENT == 1000


@pytest.mark.parametrize(("changes", "valid"), [
    ({"cooling_off_days": 30}, True), ({"cooling_off_days": 31}, False), ({"cooling_off_days": 3}, True),
    ({"min_prepayment": D(0)}, False), ({"min_prepayment": D("0.01")}, True)])
def test_product_bounds_of_the_new_terms(changes, valid):
    product = replace(PRODUCT, **changes)
    if valid:
        assert product.validate() is product
    else:
        with pytest.raises(InvalidLoanProduct) as refused:
            product.validate()
        assert refused.value.details["errors"][0]["field"] == next(iter(changes))
