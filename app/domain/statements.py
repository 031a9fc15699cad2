"""A loan's statement of account as dated entries: the disbursal, every charge, every instalment of
the schedule with what is paid and still due on it, and every payment. Pure: the figures are the
loan's own (`Loan.instalments`, `Repayment`), so a statement and the loan view cannot disagree."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import date
from decimal import Decimal

from app.domain.loans import Closure, InvalidTransition, Loan, Repayment
from app.domain.money import ZERO

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as the start of a formula


@dataclass(frozen=True, slots=True)
class Entry:
    on: date
    entry: str  # disbursement, charge, instalment; repayment, pre_closure, prepayment, cooling_off_exit
    reference: str
    description: str
    amount: Decimal
    interest: Decimal | None = None
    principal: Decimal | None = None
    charges: Decimal | None = None  # of a payment, what settled penal charges
    paid: Decimal | None = None  # an instalment's (a penal charge's) paid so far
    due: Decimal | None = None  # and still to pay
    outstanding_after: Decimal | None = None  # the loan's, after a payment


_ORDER = {"disbursement": 0, "charge": 1, "instalment": 2}  # then the payments
# A payment's entry and label by its kind (an instalment payment is a `repayment`).
_PAYMENTS = {"instalment": ("repayment", "Payment"), "pre_closure": ("pre_closure", "Pre-closure"),
             "prepayment": ("prepayment", "Part-prepayment"), "cooling_off_exit": ("cooling_off_exit", "Cooling-off exit")}

_EARLY = {Closure.PRE_CLOSED: "pre-closure", Closure.COOLING_OFF_EXIT: "cooling-off exit"}


def entries(loan: Loan, repayments: Sequence[Repayment]) -> list[Entry]:
    """Dated, oldest first; on one day the disbursal, then charges, the instalment due, the payments."""
    if loan.disbursed_on is None:
        raise InvalidTransition(f"The loan is {loan.status.value}; a statement exists once it is disbursed.",
                                current=loan.status.value)
    out = [Entry(loan.disbursed_on, "disbursement", loan.payout_reference or "", "Disbursed", loan.amount),
           Entry(loan.disbursed_on, "charge", "processing_fee", "Processing fee",
                 loan.kfs.processing_fee)]
    n = len(loan.instalments)
    # Closed early: the closing payment settled what was left, so nothing is due on any row, and the
    # rows dated after it never fell due (they are the plan the closure replaced).
    early = _EARLY.get(loan.closure) if loan.closure else None
    closed_on = loan.closed_at.date() if early and loan.closed_at else None
    for row in loan.instalments:
        assert row.due_date is not None  # a disbursed loan's schedule is dated
        if closed_on and row.due_date > closed_on:
            break
        description, due = f"Instalment {row.number} of {n}", row.amount_left
        if closed_on and due:
            description, due = f"{description}, settled by the {early}", ZERO
        out.append(Entry(row.due_date, "instalment", f"{row.number}/{n}", description,
                         row.payment, row.interest, row.principal, paid=row.interest_paid + row.principal_paid,
                         due=due))
    for c in loan.arrears.charges:  # RBI (2023): penal charges are charges of their own, never interest
        out.append(Entry(c.charged_on, "charge", f"penal_charge/{c.instalment}", "Penal charge", c.amount,
                         paid=c.paid, due=c.left))
    for paid in repayments:
        on = paid.paid_at.date()
        charge = Decimal(str(paid.breakdown.get("prepayment_charge") or 0))  # a pre-closure's, as quoted
        if charge:
            out.append(Entry(on, "charge", "prepayment_charge", "Prepayment charge", charge))
        entry, label = _PAYMENTS.get(paid.kind.value, (paid.kind.value, paid.kind.value.replace("_", " ").capitalize()))
        parts = paid.allocations  # none for a settlement: its figures are its quote's
        out.append(Entry(on, entry, paid.id, label, paid.amount, sum((a.interest for a in parts), ZERO) if parts else None,
                         sum((a.principal for a in parts), ZERO) if parts else None, paid.charges_paid,
                         outstanding_after=paid.outstanding_after))
    return sorted(out, key=lambda e: (e.on, _ORDER.get(e.entry, 3)))


def safe_cell(value: object) -> str:
    """A cell as text; one a spreadsheet would run as a formula is prefixed with `'` (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(rows: Sequence[Entry]) -> str:
    """One header row, then one row per entry; amounts as exact rupees (`1234.50`) for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f.name for f in fields(Entry)])
    writer.writerows([safe_cell(v.isoformat() if isinstance(v, date) else v) for v in astuple(row)] for row in rows)
    return out.getvalue()
