"""A 30-year schedule's statement: many pages, each schedule page under its column headings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdfium2

from app.domain.loans import Loan, LoanOrigin, LoanStatus
from app.domain.statements import entries
from app.services.catalogue import product_of
from app.services.statements import pdf
from tests.integration.lending_helpers import TERMS


def test_a_long_schedule_repeats_its_headings_on_every_page():
    product = replace(product_of({**TERMS, "bank_id": "b" * 24, "max_tenure_months": 360}), id="a" * 24)
    now = datetime(2026, 12, 6, tzinfo=UTC)
    loan = Loan.open(product, user_id="u", amount=Decimal(5000000), tenure_months=360, purpose="Home",
                     status=LoanStatus.APPROVED, origin=LoanOrigin.DIRECT, by="a", now=now)
    loan = replace(loan, id="c" * 24).disburse(by="a", now=now, on=date(2026, 12, 6), reference="UTR1")
    document = pypdfium2.PdfDocument(pdf(loan, entries(loan, []), lender="Lender", borrower="B", bank="Bank",
                                         today=now.date()))
    pages = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    assert len(pages) > 5 and all("Due date" in text for text in pages[:-1])
    assert all(f"page {n} of {len(pages)}" in text for n, text in enumerate(pages, 1))
    assert "₹51,430.63" in pages[-1] or "₹51,430.63" in pages[-2]  # the EMI, Indian grouping, to the end
