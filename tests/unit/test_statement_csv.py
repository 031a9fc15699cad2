"""Statement CSV: one header row, exact amounts, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.domain.statements import Entry, safe_cell, to_csv


def test_cells_that_start_a_formula_are_quoted_and_amounts_stay_exact():
    for text in ("=1+1", "+1", "-1-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("UTR-1") == "UTR-1" and safe_cell(None) == "" and safe_cell(Decimal("0.10")) == "0.10"
    text = to_csv([Entry(date(2026, 12, 6), "disbursement", "=HYPERLINK(\"x\")", "Disbursed", Decimal("100000.00"))])
    header, row = text.splitlines()
    assert header == "on,entry,reference,description,amount,interest,principal,charges,paid,due,outstanding_after"
    assert row == "2026-12-06,disbursement,\"'=HYPERLINK(\"\"x\"\")\",Disbursed,100000.00,,,,,,"
