"""Arrears of a disbursed loan: days past due, its class, penal charges, reminders. Pure, `Decimal` only.

**Classes** (RBI IRACP prudential norms and the SMA framework): days past due are counted from the
oldest unpaid instalment's due date (paid on the due date: 0); 1-30 SMA-0, 31-60 SMA-1, 61-90 SMA-2,
over 90 NPA. Paying every instalment past due makes the loan CURRENT again (an NPA upgrades only when
all arrears are paid: the oldest unpaid instalment is then not past due).

**Penal charges** (RBI, "Fair Lending Practice - Penal Charges in Loan Accounts", 2023): one charge per
instalment left unpaid past its due date, dated the day after it, set by the product (a fixed amount, or
a percentage of that instalment's unpaid amount, capped). A charge is its own record: never added to the
rate, never part of the principal, no interest on it (the schedule never reads it).

**The order a payment settles** (`split_payment`): the instalments due (oldest first, interest then
principal), then the penal charges (oldest first), then instalments not yet due. Fineract's default
("Penalties, Fees, Interest, Principal") and its "Due penalty, fee, interest, principal" pay charges
first: money a borrower sends to clear an overdue instalment would leave it unpaid, so days past due,
the class (and the credit bureau report) would keep worsening while the borrower paid what was due.
Ours is Fineract's "Interest, Principal, Penalties, Fees" order applied to what is due, which the RBI's
intent (penal charges a disincentive, not revenue; classification on principal and interest overdue)
favours; charges still come before paying ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from app.domain.loan_schedule import Instalment
from app.domain.money import ZERO, percent_of


class LoanClass(StrEnum):
    CURRENT = "CURRENT"
    SMA_0 = "SMA_0"  # 1-30 days past due
    SMA_1 = "SMA_1"  # 31-60
    SMA_2 = "SMA_2"  # 61-90
    NPA = "NPA"  # over 90


_UPPER = ((0, LoanClass.CURRENT), (30, LoanClass.SMA_0), (60, LoanClass.SMA_1), (90, LoanClass.SMA_2))


def classify(days_past_due: int) -> LoanClass:
    return next((c for upper, c in _UPPER if days_past_due <= upper), LoanClass.NPA)


class PenalKind(StrEnum):
    FIXED = "fixed"  # `value` rupees per late instalment
    PERCENT = "percent"  # `value` % of the late instalment's unpaid amount


@dataclass(frozen=True, slots=True)
class PenalRule:
    kind: PenalKind
    value: Decimal
    cap: Decimal | None = None  # at most this much per late instalment

    def charge(self, overdue: Decimal) -> Decimal:
        amount = self.value if self.kind is PenalKind.FIXED else percent_of(overdue, self.value)
        return amount if self.cap is None else min(amount, self.cap)


@dataclass(frozen=True, slots=True)
class Charge:
    instalment: int
    charged_on: date
    amount: Decimal
    paid: Decimal = ZERO
    waived: Decimal = ZERO  # a cooling-off exit leaves without penalty (RBI)

    @property
    def left(self) -> Decimal:
        return self.amount - self.paid - self.waived


@dataclass(frozen=True, slots=True)
class ClassChange:
    loan_class: LoanClass
    on: date
    days_past_due: int


@dataclass(frozen=True, slots=True)
class Reminders:
    """When the borrower is mailed about the oldest unpaid instalment: days before its due date, days after."""

    before: int = 3
    after: tuple[int, ...] = (1, 7, 30)

    def due(self, due_date: date, today: date, *, days_apart: int = 30) -> int | None:
        """The latest milestone reached today (negative: before the due date), so a missed day is caught up
        with one mail, not one per day missed; a `before` one only while the instalment is not yet late, and
        only when instalments fall due further apart than that window (`days_apart`): a daily loan's borrower
        would otherwise be mailed every day."""
        days = (today - due_date).days
        ahead = (-self.before,) if days_apart > self.before else ()
        reached = [m for m in (*ahead, *self.after) if m <= days and (m > 0 or days <= 0)]
        return max(reached) if reached else None


@dataclass(frozen=True, slots=True)
class Arrears:
    """A disbursed loan's arrears as of its last review (daily) or payment. Days past due move every day,
    so they are not stored: `days_past_due` of the oldest unpaid instalment (the loan's `next_due`)."""

    loan_class: LoanClass = LoanClass.CURRENT
    overdue: Decimal = ZERO  # instalments' amounts past due and unpaid
    charges: tuple[Charge, ...] = ()
    history: tuple[ClassChange, ...] = ()  # every change of class, with its date
    reminded: str | None = None  # the last reminder sent: "<instalment>:<milestone>"

    @property
    def charges_due(self) -> Decimal:
        return sum((c.left for c in self.charges), ZERO)


def days_past_due(oldest_unpaid_due: date | None, today: date) -> int:
    return max(0, (today - oldest_unpaid_due).days) if oldest_unpaid_due else 0


def assess(arrears: Arrears, rows: Sequence[Instalment], today: date, rule: PenalRule | None) -> Arrears:
    """The arrears on `today`: a charge for each instalment newly late (each once), the class, the overdue."""
    charged = {c.instalment for c in arrears.charges}
    late = [i for i in rows if i.due_date is not None and i.due_date < today and not i.paid]
    added = tuple(Charge(i.number, i.due_date + timedelta(days=1), rule.charge(i.amount_left))
                  for i in late if rule is not None and i.number not in charged and i.due_date is not None)
    dpd = days_past_due(next((i.due_date for i in rows if not i.paid), None), today)
    cls = classify(dpd)
    moved = (ClassChange(cls, today, dpd),) if cls != arrears.loan_class else ()
    return replace(arrears, loan_class=cls, overdue=sum((i.amount_left for i in late), ZERO), charges=arrears.charges + tuple(c for c in added if c.amount > 0),
                   history=arrears.history + moved)


def closed_early(arrears: Arrears, on: date, *, waive: bool) -> Arrears:
    """The arrears of a loan closed early on `on`: nothing overdue, the class current again, and each charge
    still due paid by the closing payment (a pre-closure quote includes them) or waived (a cooling-off exit)."""
    charges = tuple(replace(c, waived=c.waived + c.left) if waive else replace(c, paid=c.paid + c.left)
                    for c in arrears.charges)
    moved = (ClassChange(LoanClass.CURRENT, on, 0),) if arrears.loan_class != LoanClass.CURRENT else ()
    return replace(arrears, loan_class=LoanClass.CURRENT, overdue=ZERO, charges=charges, history=arrears.history + moved)


def due_by(rows: Sequence[Instalment], today: date) -> Decimal:
    """What the schedule leaves to pay on instalments due by `today` (today's included)."""
    return sum((i.amount_left for i in rows if i.due_date is not None and i.due_date <= today), ZERO)


def split_payment(rows: Sequence[Instalment], charges: Sequence[Charge], amount: Decimal,
                  today: date) -> tuple[Decimal, tuple[Charge, ...]]:
    """What of `amount` goes to the schedule, and the charges after it (see the module's order)."""
    due = due_by(rows, today)
    rest = amount - min(amount, due)
    settled = []
    for charge in charges:
        take = min(rest, charge.left)
        rest -= take
        settled.append(replace(charge, paid=charge.paid + take) if take else charge)
    to_charges = sum((c.paid for c in settled), ZERO) - sum((c.paid for c in charges), ZERO)
    return amount - to_charges, tuple(settled)

