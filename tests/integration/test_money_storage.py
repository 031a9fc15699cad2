"""Money is exact end to end: Decimal in the service, Decimal128 in MongoDB, old floats read exactly."""

from __future__ import annotations

from decimal import Decimal

from bson import Decimal128, ObjectId

from tests.conftest import bearer


async def test_financial_details_are_stored_as_decimal128(api, email):
    tokens = await api.customer(email)
    body = {"monthly_income": 85000.1, "monthly_expenses": 30000, "existing_emi": 12500.25, "credit_score": 760}
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json=body)
    assert r.status_code == 200 and r.json() == body
    raw = await api.container.db["user"].find_one({"_id": ObjectId(tokens["user_id"])})
    stored = raw["financial_details"]
    assert stored["monthly_income"] == Decimal128("85000.1") and isinstance(stored["existing_emi"], Decimal128)
    assert stored["existing_emi"].to_decimal() == Decimal("12500.25")
    user = await api.container.users_repo.get(tokens["user_id"])
    assert user.financial_details["monthly_income"] == Decimal("85000.1")


async def test_details_written_as_floats_before_are_read_as_exact_decimals(api, email):
    tokens = await api.customer(email)
    await api.container.db["user"].update_one({"_id": ObjectId(tokens["user_id"])}, {"$set": {"financial_details": {
        "monthly_income": 85000.1, "monthly_expenses": 30000, "existing_emi": 0.1}}})
    user = await api.container.users_repo.get(tokens["user_id"])
    assert user.financial_details == {"monthly_income": Decimal("85000.1"), "monthly_expenses": Decimal("30000"),
                                      "existing_emi": Decimal("0.1")}
    r = await api.client.get("/users/me/financial-details", headers=bearer(tokens))
    assert r.status_code == 200 and r.json()["existing_emi"] == 0.1 and r.json()["monthly_income"] == 85000.1
