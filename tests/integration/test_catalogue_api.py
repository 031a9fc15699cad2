"""Catalogue administration over HTTP, and `kycflow seed-catalogue`."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from bson import ObjectId
from bson.decimal128 import Decimal128

from app.cli import main
from app.config import get_settings
from app.services.catalogue import SEED_PRODUCTS
from tests.conftest import bearer
from tests.integration.lending_helpers import apply_body, borrower

PRODUCT = {
    "name": "Salary Personal Loan", "type": "personal", "min_amount": 50000, "max_amount": 2500000,
    "min_tenure_months": 12, "max_tenure_months": 60, "annual_interest_rate": 11.25, "processing_fee_pct": 1.5,
    "prepayment_charge_pct": 4, "repayment_frequency": "monthly", "min_monthly_income": 25000, "min_age": 21,
    "max_age": 60, "max_foir": 0.55,
}


async def _bank(api, admin, code="BNB") -> str:
    r = await api.client.post("/admin/banks", headers=bearer(admin), json={"name": "Bharat National Bank",
                                                                           "code": code})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_admin_adds_a_bank_and_a_product_customers_can_browse(api):
    admin = await api.staff("admin")
    r = await api.client.post("/admin/banks", headers=bearer(admin), json={"name": "Sahyadri Bank", "code": "ssfb"})
    assert r.status_code == 201 and r.json()["code"] == "SSFB" and r.json()["active"], r.text
    bank_id = r.json()["id"]
    r = await api.client.post("/admin/banks", headers=bearer(admin), json={"name": "Other", "code": "SSFB"})
    assert r.status_code == 409 and r.json()["error_code"] == "bank_exists"
    r = await api.client.get("/admin/banks", headers=bearer(admin))
    assert r.json()["total"] == 1 and r.json()["items"][0]["name"] == "Sahyadri Bank"

    r = await api.client.post("/admin/products", headers=bearer(admin), json={**PRODUCT, "bank_id": bank_id})
    assert r.status_code == 201, r.text
    product = r.json()
    assert product["bank_name"] == "Sahyadri Bank" and product["annual_interest_rate"] == 11.25
    assert product["max_risk_level"] == "Medium" and product["active"] is True
    raw = await api.container.db["loan_products"].find_one({"_id": ObjectId(product["id"])})
    assert raw["min_amount"] == Decimal128("50000.00") and raw["annual_interest_rate"] == Decimal128("11.25")
    assert raw["max_foir"] == Decimal128("0.55")
    r = await api.client.post("/admin/products", headers=bearer(admin), json={**PRODUCT, "bank_id": bank_id})
    assert r.status_code == 409 and r.json()["error_code"] == "product_exists"

    listed = (await api.client.get("/loans/products")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == product["id"]
    assert (await api.client.get(f"/loans/products/{product['id']}")).json() == product
    actions = [d["action"] async for d in api.container.db["user_log"].find({"actor_id": admin["user_id"]})]
    assert {"bank_created", "product_created"} <= set(actions)


async def test_inconsistent_limits_are_refused_each_by_field(api):
    admin = await api.staff("admin")
    bank_id = await _bank(api, admin)
    body = {**PRODUCT, "bank_id": bank_id, "min_amount": 500000, "max_amount": 100000, "min_tenure_months": 60,
            "max_tenure_months": 12, "min_age": 50, "max_age": 40}
    r = await api.client.post("/admin/products", headers=bearer(admin), json=body)
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["error_code"] == "invalid_product"
    assert {tuple(x["loc"]) for x in error["errors"]} == {("body", "max_amount"), ("body", "max_tenure_months"),
                                                          ("body", "max_age")}
    for bad in ({"annual_interest_rate": 61}, {"processing_fee_pct": 11}, {"max_foir": 1.5}, {"max_foir": 0},
                {"min_amount": -1}, {"min_amount": 100.001}, {"annual_interest_rate": "ten"},
                {"type": "yacht"}, {"repayment_frequency": "yearly"}, {"bank_id": "nope"}, {"surprise": 1},
                {"max_tenure_months": 361}, {"min_amount": {"$gt": 0}}):
        r = await api.client.post("/admin/products", headers=bearer(admin), json={**PRODUCT, "bank_id": bank_id,
                                                                                   **bad})
        assert r.status_code == 422, (bad, r.text)
    r = await api.client.post("/admin/products", headers=bearer(admin), json={**PRODUCT, "bank_id": str(ObjectId())})
    assert r.status_code == 404 and r.json()["error_code"] == "bank_not_found"
    assert await api.container.db["loan_products"].count_documents({}) == 0


async def test_new_terms_apply_to_new_loans_only(api):
    admin = await api.staff("admin")
    bank_id = await _bank(api, admin)
    product = (await api.client.post("/admin/products", headers=bearer(admin),
                                     json={**PRODUCT, "bank_id": bank_id})).json()
    who = await borrower(api)
    r = await api.client.post("/loans/apply", headers=who["headers"],
                              json={"product_id": product["id"], "amount": 100000, "tenure_months": 12,
                                    "purpose": "Wedding"})
    assert r.status_code == 201, r.text
    loan_id, emi = r.json()["loan_id"], r.json()["emi"]
    r = await api.client.put(f"/admin/products/{product['id']}", headers=bearer(admin),
                             json={**PRODUCT, "bank_id": bank_id, "annual_interest_rate": 14, "active": False})
    assert r.status_code == 200 and r.json()["annual_interest_rate"] == 14 and not r.json()["active"]
    loan = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert loan["annual_interest_rate"] == 11.25 and loan["emi"] == emi and loan["kfs"]["annual_interest_rate"] == 11.25
    # Inactive: hidden from customers and closed to applications, still listed for admins.
    assert (await api.client.get("/loans/products")).json()["total"] == 0
    assert (await api.client.get(f"/loans/products/{product['id']}")).status_code == 404
    other = await borrower(api)
    r = await api.client.post("/loans/apply", headers=other["headers"], json=apply_body(
        type("P", (), {"id": product["id"]})()))
    assert r.status_code == 404 and r.json()["error_code"] == "product_not_found"
    assert (await api.client.get("/admin/products", headers=bearer(admin))).json()["total"] == 1
    for missing in ("nope", str(ObjectId())):
        r = await api.client.put(f"/admin/products/{missing}", headers=bearer(admin),
                                 json={**PRODUCT, "bank_id": bank_id})
        assert r.status_code == 404 and r.json()["error_code"] == "product_not_found"


async def test_only_admins_keep_the_catalogue(api):
    auditor = await api.staff("auditor")
    who = await borrower(api)
    for headers in (bearer(auditor), who["headers"]):
        assert (await api.client.get("/admin/banks", headers=headers)).status_code == 403
        r = await api.client.post("/admin/banks", headers=headers, json={"name": "Shadow Bank", "code": "SHD"})
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
    assert (await api.client.get("/admin/products")).status_code == 401
    assert await api.container.db["banks"].count_documents({}) == 0


async def test_seed_catalogue_twice_adds_once(api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    monkeypatch.setenv("MONGODB_URI", api.settings.mongodb_uri or "")
    monkeypatch.setenv("MONGODB_DB", api.settings.mongodb_db)
    monkeypatch.setenv("DATA_DIR", str(api.settings.data_dir))
    get_settings.cache_clear()
    try:
        for _ in range(2):  # the real command, on its own event loop
            assert await asyncio.to_thread(main, ["seed-catalogue"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert f"2 bank(s) and {len(SEED_PRODUCTS)} product(s) added" in out and "0 bank(s) and 0 product(s)" in out
    products = (await api.client.get("/loans/products", params={"page_size": 100})).json()["items"]
    assert sorted(p["type"] for p in products) == sorted(["personal", "home", "auto", "education", "business",
                                                          "gold", "micro"])
    micro = next(p for p in products if p["type"] == "micro")
    assert micro["repayment_frequency"] == "daily" and Decimal(str(micro["annual_interest_rate"])) == 24
