"""The route walk's part for arrears (see `route_walk.py`): the admin book by class, the daily review of a loan
gone 32 days late (charges, classes, a reminder), and the payment that cures it. It moves the clock ahead."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.domain.delinquency import PenalKind, PenalRule
from tests.conftest import bearer
from tests.integration.lending_helpers import apply_body, borrower, make_product, relogin


async def walk_arrears(w: Any) -> None:
    api = w.api
    h = bearer(await api.staff("admin"))
    product = await make_product(api, name="Walk Arrears Loan", penal_charge=PenalRule(PenalKind.FIXED, Decimal(500)))
    who = await borrower(api)
    applied = (await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))).json()
    loan_id = applied["loan_id"]
    if number := applied["kfs"].get("number"):  # the borrower accepts the KFS before the disbursal
        assert (await api.client.post(f"/loans/my-loans/{loan_id}/kfs/accept", headers=who["headers"],
                                      json={"kfs_number": number})).is_success
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=h)).is_success
    assert (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=h)).is_success
    await w.call("GET", "/admin/loans", headers=h, params={"loan_class": "SMA_1"})
    await w.run_jobs()
    api.container.clock.advance(days=63)  # two instalments late, the oldest 32 days (SMA_1)
    await w.run_jobs()
    who = await relogin(api, who)
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert loan["loan_class"] == "SMA_1", loan["class_history"]
    await w.call("POST", "/loans/my-loans/{loan_id}/repayments", f"/loans/my-loans/{loan_id}/repayments",
                 headers=who["headers"], json={"amount": round(loan["overdue_amount"] + loan["charges_due"], 2)})
    await w.run_jobs()
