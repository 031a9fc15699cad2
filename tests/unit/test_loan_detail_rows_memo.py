"""An unpaid loan's schedule JSON is kept beside its shared rows (`_rows_json`): every read gives the
documented body, the first and the later ones, and a part-paid loan's rows (its own) are never kept."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from app.api.schemas.loans import _SHARED_ROWS, LoanDetail
from tests.unit._kfs_helpers import kfs_of
from tests.unit.test_loan_detail_body import _documented
from tests.unit.test_loans_aggregate import PAID_AT, applied, disbursed


def test_every_read_of_an_unpaid_loan_gives_the_documented_body():
    for loan in (replace(applied(), id="L0"), replace(disbursed(), id="L1")):
        first, again = LoanDetail.body(loan, [], kfs=kfs_of(loan)), LoanDetail.body(loan, [], kfs=kfs_of(loan))
        assert first == again and json.loads(again) == _documented(loan, [])
        assert _SHARED_ROWS[id(loan.instalments)][0] is loan.instalments


def test_a_part_paid_loan_is_written_afresh_at_every_read():
    loan = replace(disbursed(), id="L1")
    LoanDetail.body(loan, [], kfs=kfs_of(loan))
    paid, _ = loan.apply_payment(Decimal("100.00"), by="u1", now=PAID_AT)
    body = json.loads(LoanDetail.body(paid, [], kfs=kfs_of(paid)))
    assert body == _documented(paid, []) and body["schedule"][0]["interest_paid"] == 100.0
    assert id(paid.instalments) not in _SHARED_ROWS
