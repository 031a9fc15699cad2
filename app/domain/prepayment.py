"""Paying a loan early in part, or leaving it in the cooling-off period. Pure: no I/O, `Decimal` only.

Part-prepayment: the rows already due or paid (in part or ahead) stay as they are; the principal left
after them, less the prepayment, is rescheduled on the loan's due-date grid, keeping the tenure (a lower
instalment) or the instalment (fewer of them). The prepayment also pays the interest its principal
accrued since the last due date (the rebuilt rows charge the lower balance for that whole period) and
the product's charge (`LoanProduct.charge_pct`). Cooling-off: within the product's period after
disbursal the borrower leaves by repaying the principal and the APR for the days used, no penalty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from app.domain.delinquency import closed_early
from app.domain.errors import Conflict, RuleViolation
from app.domain.loan_schedule import PRECISION, KeepTerm, ScheduleVersion, rescheduled
from app.domain.loans import Closure, InvalidTransition, Loan, LoanStatus, Repayment, RepaymentKind
from app.domain.money import HUNDRED, ZERO, money, percent_of, round_money


class InstalmentsOverdue(Conflict):
    """Pay the overdue instalments and penal charges first: a prepayment goes to principal, never to arrears."""

    code = "instalments_overdue"


class PrepaymentOutOfRange(RuleViolation):
    """The prepayment is below the product's minimum or is the whole principal (that is a pre-closure)."""

    code = "prepayment_out_of_range"


class CoolingOffEnded(Conflict):
    """The cooling-off period of this loan has ended: pre-close it instead."""

    code = "cooling_off_ended"


def _record(figures: PrepaymentQuote | CoolingOffQuote) -> dict[str, Any]:
    """A quote as kept with its repayment: days as ISO dates."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(figures).items()}


@dataclass(frozen=True, slots=True)
class PrepaymentQuote:
    """`total` = amount + accrued_interest + prepayment_charge; the rebuilt schedule's terms beside the old."""

    quote_date: date
    keep: KeepTerm
    amount: Decimal
    accrued_from: date
    accrued_days: int
    annual_interest_rate: Decimal
    accrued_interest: Decimal
    prepayment_charge_pct: Decimal
    prepayment_charge: Decimal
    total: Decimal
    first_instalment: int  # the first rebuilt; those before it stay as they are
    principal_before: Decimal
    principal_after: Decimal
    emi_before: Decimal
    emi_after: Decimal
    instalments_before: int  # from `first_instalment` on
    instalments_after: int
    last_due_date: date


def _plan(loan: Loan, amount: Decimal, keep: KeepTerm, on: date) -> tuple[PrepaymentQuote, ScheduleVersion]:
    if loan.status != LoanStatus.DISBURSED or loan.disbursed_on is None:
        raise InvalidTransition(f"The loan is {loan.status.value}; only a DISBURSED loan takes a prepayment.",
                                current=loan.status.value)
    amount, rows = money(amount, strict=True), loan.instalments
    late = [i.number for i in rows if i.due_date is not None and i.due_date < on and not i.paid]
    if late or loan.arrears.charges_due:
        raise InstalmentsOverdue(instalments=late, charges_due=str(loan.arrears.charges_due))
    kept = max([i.number for i in rows if i.due_date is not None and i.due_date <= on]
               + [i.number for i in rows if i.interest_paid or i.principal_paid], default=0)
    balance = rows[kept].opening_balance if kept < len(rows) else ZERO
    least = loan.product.min_prepayment
    if not least <= amount < balance:
        raise PrepaymentOutOfRange(
            f"A prepayment must be at least {least} and below the {balance} of principal left after the instalments "
            "already due or paid; to repay it all, pre-close (GET /loans/my-loans/{loan_id}/pre-close).",
            minimum=str(least), below=str(balance))
    since = rows[kept - 1].due_date if kept else loan.disbursed_on
    assert since is not None
    days, rate = max((on - since).days, 0), loan.product.annual_interest_rate
    with localcontext(prec=PRECISION):
        accrued = round_money(amount * rate / HUNDRED * days / 365)
    charge = percent_of(amount, loan.product.charge_pct)
    emi, count = rescheduled(balance - amount, loan.frequency.periodic_rate(rate), keep, loan.emi, len(rows) - kept)
    version = ScheduleVersion(on, "part_prepayment", keep, kept + 1, balance - amount, emi, count, balance, loan.emi,
                              len(rows) - kept)
    quote = PrepaymentQuote(on, keep, amount, since, days, rate, accrued, loan.product.charge_pct, charge,
                            amount + accrued + charge, kept + 1, balance, balance - amount, loan.emi, emi,
                            len(rows) - kept, count, loan.frequency.due_date(loan.disbursed_on, kept + count))
    return quote, version


def prepayment_quote(loan: Loan, amount: Decimal, keep: KeepTerm, on: date) -> PrepaymentQuote:
    return _plan(loan, amount, keep, on)[0]


def prepay(loan: Loan, amount: Decimal, keep: KeepTerm, *, on: date, by: str,
           now: datetime) -> tuple[Loan, Repayment, PrepaymentQuote]:
    """The loan on its rebuilt schedule (the version kept in `schedule_versions`), the payment's record."""
    quote, version = _plan(loan, amount, keep, on)
    after = replace(loan, schedule_versions=(*loan.schedule_versions, version), emi=version.emi,
                    paid_total=loan.paid_total + quote.total, updated_at=now).with_schedule()
    return after, Repayment(id="", loan_id=loan.id, user_id=loan.user_id, kind=RepaymentKind.PREPAYMENT,
                            amount=quote.total, allocations=(), outstanding_after=after.outstanding, paid_at=now,
                            recorded_by=by, breakdown=_record(quote)), quote


@dataclass(frozen=True, slots=True)
class CoolingOffQuote:
    """amount_due = principal + interest − already_paid (refund_due when payments exceed it), where
    interest = principal × APR × days_used / 365, half-up to paise."""

    quote_date: date
    disbursed_on: date
    ends_on: date  # the last day an exit is taken
    days_used: int
    principal: Decimal
    apr: Decimal
    interest: Decimal
    already_paid: Decimal
    amount_due: Decimal
    refund_due: Decimal


def cooling_off_quote(loan: Loan, on: date) -> CoolingOffQuote:
    if not loan.status.is_running or loan.disbursed_on is None:
        raise InvalidTransition(f"The loan is {loan.status.value}; a cooling-off exit is for a disbursed loan.",
                                current=loan.status.value)
    ends = loan.disbursed_on + timedelta(days=loan.product.cooling_off_days)
    if on > ends:
        raise CoolingOffEnded(f"The cooling-off period ended on {ends.isoformat()}; pre-close the loan instead "
                              "(GET /loans/my-loans/{loan_id}/pre-close).", ended_on=ends.isoformat())
    days = (on - loan.disbursed_on).days
    with localcontext(prec=PRECISION):
        interest = round_money(loan.amount * loan.kfs.apr / HUNDRED * days / 365)
    owed = loan.amount + interest - loan.paid_total
    return CoolingOffQuote(on, loan.disbursed_on, ends, days, loan.amount, loan.kfs.apr, interest, loan.paid_total,
                           max(owed, ZERO), max(-owed, ZERO))


def exit_cooling_off(loan: Loan, *, on: date, by: str, now: datetime) -> tuple[Loan, Repayment, CoolingOffQuote]:
    """Closes the loan (`Closure.COOLING_OFF_EXIT`) with a final payment of the quote's amount due."""
    quote = cooling_off_quote(loan, on)
    closed = loan._become(LoanStatus.CLOSED, by=by, now=now, note=Closure.COOLING_OFF_EXIT.value,
                          closure=Closure.COOLING_OFF_EXIT, closed_at=now, paid_total=loan.paid_total + quote.amount_due,
                          arrears=closed_early(loan.assessed(on).arrears, on, waive=True))  # no penalty
    return closed, Repayment(id="", loan_id=loan.id, user_id=loan.user_id, kind=RepaymentKind.COOLING_OFF_EXIT,
                             amount=quote.amount_due, allocations=(), outstanding_after=ZERO, paid_at=now,
                             recorded_by=by, breakdown=_record(quote)), quote
