"""The loan detail's body is written by hand where it is large (the schedule, for speed): it must be
exactly what its documented model gives, figures, dates and `paid` flags included."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from app.api.schemas.loans import LoanDetail, RepaymentOut, ScheduleRow
from tests.unit._kfs_helpers import kfs_of
from tests.unit.test_loans_aggregate import PAID_AT, applied, disbursed


def _documented(loan, repayments):
    return LoanDetail.of(loan, schedule=[ScheduleRow.model_validate(i) for i in loan.instalments],
                         repayments=repayments, kfs=kfs_of(loan)).model_dump(mode="json")


def test_the_detail_body_is_its_model_for_an_application_and_a_loan_part_paid():
    paid, record = replace(disbursed(), id="L1").apply_payment(Decimal("15000.55"), by="u1", now=PAID_AT)
    record = replace(record, id="R1")
    for loan, repayments in ((replace(applied(), id="L0"), []), (paid, [record])):
        body = json.loads(LoanDetail.body(loan, repayments, kfs=kfs_of(loan)))
        assert body == _documented(loan, repayments)
    rows = json.loads(LoanDetail.body(paid, [record], kfs=kfs_of(paid)))["schedule"]
    assert rows[0]["paid"] is True and rows[1]["paid"] is False and rows[1]["interest_paid"] > 0
    assert rows[0]["due_date"] == "2026-02-28" and RepaymentOut.of(record).amount == Decimal("15000.55")
