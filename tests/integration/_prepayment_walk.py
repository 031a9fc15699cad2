"""The route walk's part for part-prepayment and the cooling-off exit (see `route_walk.py`)."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer
from tests.integration.lending_helpers import apply_body, borrower, make_product


async def walk_prepayments(w: Any, people: dict[str, Any]) -> None:
    api, h = w.api, bearer(people["admin"])
    product = await make_product(api, name="Walk Prepayment Loan")
    bh = (await borrower(api))["headers"]
    applied = (await api.client.post("/loans/apply", headers=bh, json=apply_body(product))).json()
    loan_id = applied["loan_id"]
    if "number" in applied["kfs"]:  # disbursal needs the borrower's acceptance of the KFS
        assert (await api.client.post(f"/loans/my-loans/{loan_id}/kfs/accept", headers=bh,
                                      json={"kfs_number": applied["kfs"]["number"]})).is_success
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=h)).is_success
    assert (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=h)).is_success
    base, body = f"/loans/my-loans/{loan_id}", {"amount": 20000, "keep": "tenure"}
    await w.call("POST", "/loans/my-loans/{loan_id}/prepayments/quote", f"{base}/prepayments/quote", headers=bh,
                 json=body)
    await w.call("POST", "/loans/my-loans/{loan_id}/prepayments", f"{base}/prepayments",
                 headers={**bh, "Idempotency-Key": "walk-prepayment"}, json=body)
    await w.call("GET", "/loans/my-loans/{loan_id}/cooling-off-exit", f"{base}/cooling-off-exit", headers=bh)
    await w.call("POST", "/loans/my-loans/{loan_id}/cooling-off-exit", f"{base}/cooling-off-exit", headers=bh)
    await w.run_jobs()
