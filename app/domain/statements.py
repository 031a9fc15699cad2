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

from app.domain.loans import InvalidTransition, Loan, Repayment, RepaymentKind
from app.domain.money import ZERO

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as the start of a formula


@dataclass(frozen=True, slots=True)
class Entry:
    on: date
    entry: str  # disbursement, charge, instalment, repayment, pre_closure
    reference: str
    description: str
    amount: Decimal
    interest: Decimal | None = None
    principal: Decimal | None = None
    paid: Decimal | None = None  # an instalment's paid so far
    due: Decimal | None = None  # an instalment's still to pay
    outstanding_after: Decimal | None = None  # the loan's, after a payment


_ORDER = {"disbursement": 0, "charge": 1, "instalment": 2, "repayment": 3, "pre_closure": 3}


def entries(loan: Loan, repayments: Sequence[Repayment]) -> list[Entry]:
    """Dated, oldest first; on one day the disbursal, then charges, the instalment due, the payments."""
    if loan.disbursed_on is None:
        raise InvalidTransition(f"The loan is {loan.status.value}; a statement exists once it is disbursed.",
                                current=loan.status.value)
    out = [Entry(loan.disbursed_on, "disbursement", loan.payout_reference or "", "Disbursed", loan.amount),
           Entry(loan.disbursed_on, "charge", "processing_fee", "Processing fee",
                 loan.kfs.processing_fee)]
    n = len(loan.instalments)
    for row in loan.instalments:
        assert row.due_date is not None  # a disbursed loan's schedule is dated
        out.append(Entry(row.due_date, "instalment", f"{row.number}/{n}", f"Instalment {row.number} of {n}",
                         row.payment, row.interest, row.principal, row.interest_paid + row.principal_paid,
                         row.amount_left))
    for paid in repayments:
        on = paid.paid_at.date()
        if paid.kind is RepaymentKind.PRE_CLOSURE:  # settles the rest: its figures are the quote's
            charge = Decimal(str(paid.breakdown.get("prepayment_charge") or 0))
            if charge:
                out.append(Entry(on, "charge", "prepayment_charge", "Prepayment charge", charge))
            out.append(Entry(on, "pre_closure", paid.id, "Pre-closure", paid.amount,
                             outstanding_after=paid.outstanding_after))
        else:
            out.append(Entry(on, "repayment", paid.id, "Payment", paid.amount,
                             sum((a.interest for a in paid.allocations), ZERO),
                             sum((a.principal for a in paid.allocations), ZERO),
                             outstanding_after=paid.outstanding_after))
    return sorted(out, key=lambda e: (e.on, _ORDER[e.entry]))


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
