"""Statements of account: a loan's terms, schedule, payments and charges, as CSV or as a PDF laid
out for a person to read. The figures are the loan view's (`app.domain.statements`).

The PDF embeds DejaVu Sans, from the matplotlib wheel (a runtime dependency: mediapipe imports it),
for the rupee sign (U+20B9), which the PDF core fonts lack. Building a PDF takes tens of
milliseconds for a long schedule: it runs in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from app.domain.errors import InsufficientRole
from app.domain.loans import Loan
from app.domain.money import rupees
from app.domain.statements import Entry, entries, to_csv
from app.domain.users import User
from app.repositories.users import UserRepository
from app.services.catalogue import CatalogueService
from app.services.clock import Clock
from app.services.loans import LoanService

GREY = (110, 110, 110)


@cache
def _fonts() -> Path:
    spec = importlib.util.find_spec("matplotlib")
    assert spec and spec.submodule_search_locations, "matplotlib (a runtime dependency) ships the statement font"
    return Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"


class StatementService:
    def __init__(self, *, loans: LoanService, users: UserRepository, catalogue: CatalogueService, clock: Clock,
                 lender: str) -> None:
        self.loans, self.users, self.catalogue, self.clock, self.lender = loans, users, catalogue, clock, lender

    async def statement(self, viewer: User, loan_id: str, fmt: str) -> bytes:
        """Staff (`loans:read_any`) read any loan's; a customer only their own (anyone else's is 404)."""
        if viewer.can("loans:read_any"):
            loan, repayments = await self.loans.loan(loan_id)
        elif viewer.can("loans:read_own"):
            loan, repayments = await self.loans.my_loan(viewer, loan_id)
        else:
            raise InsufficientRole(permission="loans:read_own")
        rows = entries(loan, repayments)
        if fmt == "csv":
            return to_csv(rows).encode()
        customer = viewer if viewer.id == loan.user_id else await self.users.get(loan.user_id)
        banks = await self.catalogue.bank_names([loan.product])
        return await asyncio.to_thread(pdf, loan, rows, lender=self.lender, today=self.clock.now().date(),
                                       borrower=customer.name if customer else loan.user_id,
                                       bank=banks.get(loan.product.bank_id, ""))


def pdf(loan: Loan, rows: Sequence[Entry], *, lender: str, borrower: str, bank: str, today: date) -> bytes:
    doc = FPDF(format="A4")
    fonts = _fonts()
    doc.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    doc.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    doc.set_margins(15, 15, 15)
    doc.set_auto_page_break(True, margin=18)
    doc.set_title(f"Statement of account, loan {loan.id}")
    doc.set_author(lender)

    def footer() -> None:
        doc.set_y(-13)
        doc.set_font("DejaVu", size=7.5)
        doc.set_text_color(*GREY)
        doc.cell(0, 5, f"{lender} · Statement of account · loan {loan.id} · page {doc.page_no()} of {{nb}}",
                 align="C")
        doc.set_text_color(0)

    doc.footer = footer  # type: ignore[method-assign]
    doc.add_page()
    doc.set_font("DejaVu", "B", 17)
    doc.cell(0, 9, lender, new_x="LMARGIN", new_y="NEXT")
    doc.set_font("DejaVu", "", 11)
    doc.cell(0, 6, "Statement of account", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("DejaVu", size=8.5)
    doc.set_text_color(*GREY)
    doc.cell(0, 5, f"As of {today.isoformat()} · all amounts in Indian rupees", new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0)
    doc.ln(3)

    kfs, due = loan.kfs, loan.next_due
    facts = [
        ("Borrower", borrower, "Amount", rupees(loan.amount)),
        ("Loan", loan.id, "Interest rate", f"{kfs.annual_interest_rate} % a year (reducing balance)"),
        ("Product", loan.product.name, "Tenure", f"{loan.tenure_months} months, {kfs.instalments} "
                                                 f"{kfs.repayment_frequency.value} instalments"),
        ("Lender", bank or lender, "Instalment (EMI)", rupees(kfs.emi)),
        ("Status", loan.status.value, "Processing fee", rupees(kfs.processing_fee)),
        ("Disbursed on", loan.disbursed_on.isoformat() if loan.disbursed_on else "-", "APR", f"{kfs.apr} %"),
        ("Paid to date", rupees(loan.paid_total), "Outstanding", rupees(loan.outstanding)),
        ("Next due", f"{rupees(due.amount)} on {due.due_date}" if due and due.due_date else "-",
         "Outstanding principal", rupees(loan.outstanding_principal)),
        ("Overdue", rupees(loan.arrears.overdue), "Penal charges due", rupees(loan.arrears.charges_due)),
    ]
    doc.set_font("DejaVu", size=9)
    label = FontFace(emphasis="BOLD", color=GREY)
    with doc.table(col_widths=(26, 52, 42, 60), borders_layout="NONE", first_row_as_headings=False,
                   line_height=5.2, text_align="LEFT") as table:
        for a, b, c, d in facts:
            row = table.row()
            row.cell(a, style=label)
            row.cell(b)
            row.cell(c, style=label)
            row.cell(d)

    def section(title: str, heads: tuple[str, ...], widths: tuple[float, ...], body: list[tuple[str, ...]],
                texts: int, size: float = 8) -> None:
        """A titled table, its heading again on each page; the first `texts` columns words, the rest amounts.
        Plain cells: fpdf2's `table()` wraps every cell's text and took seconds for a 30-year schedule."""
        def line(cells: tuple[str, ...], fill: bool) -> None:
            for i, (text, width) in enumerate(zip(cells, widths, strict=True)):
                doc.cell(width, 4.8, text, border="B", align="L" if i < texts else "R", fill=fill)
            doc.ln()

        def heading() -> None:
            doc.set_font("DejaVu", "B", size)
            doc.set_fill_color(230, 236, 245)
            line(heads, True)
            doc.set_font("DejaVu", size=size)
            doc.set_fill_color(246, 247, 249)

        doc.ln(4)
        doc.set_font("DejaVu", "B", 11)
        doc.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        doc.set_draw_color(200)
        heading()
        for n, row in enumerate(body):
            if doc.will_page_break(4.8):
                doc.add_page()
                heading()
            line(row, n % 2 == 1)

    def money(value: Decimal | None) -> str:
        return "" if value is None else rupees(value)

    section("Repayment schedule", ("No.", "Due date", "Instalment", "Interest", "Principal", "Paid", "Due"),
            (12, 24, 30, 29, 29, 28, 28), [
                (r.reference.split("/")[0], r.on.isoformat(), money(r.amount), money(r.interest), money(r.principal),
                 money(r.paid), money(r.due)) for r in rows if r.entry == "instalment"], texts=2)
    section("Payments and charges", ("Date", "Entry", "Reference", "Amount", "Interest", "Principal", "Charges",
                                      "Balance"), (17, 27, 39, 23, 18, 18, 16, 22), [
                (r.on.isoformat(), r.description, r.reference, money(r.amount), money(r.interest),
                 money(r.principal), money(r.charges), money(r.outstanding_after)) for r in rows
                if r.entry != "instalment"], texts=3, size=7)  # a payment id and a crore fit
    return bytes(doc.output())
