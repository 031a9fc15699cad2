"""A loan and its audit entry are written together: an application (or an admin's direct loan) whose
entry cannot be written leaves no loan, notice or event behind, and a stored loan always has its entry."""

from __future__ import annotations

from app.repositories.user_log import UserLogRepository
from tests.conftest import bearer
from tests.integration.lending_helpers import apply_body, borrower, make_product


async def _written(api) -> dict[str, int]:
    db = api.container.db
    return {"loans": await db["loans"].count_documents({}),
            "audit": await db["user_log"].count_documents({"action": {"$in": ["loan_applied", "loan_opened"]}}),
            "events": await db["events"].count_documents({}),
            "jobs": await db["jobs"].count_documents({"kind": "customer_notice"})}


async def test_a_loan_whose_audit_entry_fails_is_not_opened(api, monkeypatch):
    product = await make_product(api)
    who = await borrower(api)
    admin = await api.staff("admin")
    customer_id = (await api.client.get("/users/me", headers=who["headers"])).json()["id"]
    add = UserLogRepository.add

    async def failing(self, entry):
        if entry.action in ("loan_applied", "loan_opened"):
            raise ConnectionError("the database went away")
        await add(self, entry)

    monkeypatch.setattr(UserLogRepository, "add", failing)
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 500 and r.json()["error_code"] == "internal_error"
    r = await api.client.post("/admin/loans", headers=bearer(admin), json={**apply_body(product), "user_id": customer_id})
    assert r.status_code == 500 and r.json()["error_code"] == "internal_error"
    assert await _written(api) == {"loans": 0, "audit": 0, "events": 0, "jobs": 0}
    monkeypatch.undo()
    r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert r.status_code == 201, r.text
    assert await _written(api) == {"loans": 1, "audit": 1, "events": 1, "jobs": 1}
