"""The route walk's part for loan servicing: statements and grievances (see `route_walk.py`)."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer
from tests.integration.lending_helpers import apply_body, borrower, make_product


async def accept_kfs(api: Any, who: dict[str, Any], applied: dict[str, Any]) -> None:
    """The borrower accepts the Key Fact Statement where it carries a number to accept (disbursal needs it)."""
    if "number" in applied["kfs"]:
        r = await api.client.post(f"/loans/my-loans/{applied['loan_id']}/kfs/accept", headers=who["headers"],
                                  json={"kfs_number": applied["kfs"]["number"]})
        assert r.status_code == 200, r.text


async def walk_servicing(w: Any, people: dict[str, Any]) -> None:
    api, h, ah = w.api, bearer(people["admin"]), bearer(people["auditor"])
    product = await make_product(api, name="Walk Servicing Loan")
    who = await borrower(api)
    bh = who["headers"]
    applied = (await api.client.post("/loans/apply", headers=bh, json=apply_body(product))).json()
    loan_id = applied["loan_id"]
    await accept_kfs(api, who, applied)
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=h)).is_success
    assert (await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=h)).is_success
    statement = f"/loans/my-loans/{loan_id}/statement"
    for fmt in ("pdf", "csv"):
        await w.call("GET", "/loans/my-loans/{loan_id}/statement", statement, headers=bh, params={"format": fmt})
        await w.call("GET", "/loans/my-loans/{loan_id}/statement", statement, headers=ah, params={"format": fmt})
    grievances = f"/loans/my-loans/{loan_id}/grievances"
    body = {"category": "charges", "text": "A fee I did not expect was charged."}
    first = (await w.call("POST", "/loans/my-loans/{loan_id}/grievances", grievances, headers=bh, json=body)).json()
    second = (await w.call("POST", "/loans/my-loans/{loan_id}/grievances", grievances, headers=bh, json=body)).json()
    await w.call("GET", "/loans/my-loans/{loan_id}/grievances", grievances, headers=bh)
    for params in ({}, {"status": "OPEN"}):
        await w.call("GET", "/admin/grievances", headers=ah, params=params)
    await w.call("POST", "/admin/grievances/{grievance_id}/responses",
                 f"/admin/grievances/{first['grievance_id']}/responses", headers=h, json={"message": "Checking."})
    await w.call("POST", "/admin/grievances/{grievance_id}/close", f"/admin/grievances/{second['grievance_id']}/close",
                 headers=h, json={"message": "Refunded."})
    await w.run_jobs()
