"""Verification levels: a customer verified at `basic` is refused a loan product that needs `full`, steps up
with a case that keeps what already passed (uploading only the identity document and a selfie with a passed
liveness challenge), is approved at `full` and borrows; the product's level rules and bad input."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from app.domain.kyc import assess
from tests.conftest import bearer
from tests.integration.lending_helpers import EMPLOYMENT, HOUSEHOLDS, borrower, make_product
from tests.integration.test_kyc_api import AADHAAR_FRONT, PAN, case_detail, checks_done, customer, selfie, upload

MARK = "kept from the basic case"
IDENTITY = "identity_document (one of: aadhaar, passport, driving_licence, voter_id, national_id)"


def loan(product_id: str | None, amount: int = 100000) -> dict[str, Any]:
    return {"product_id": product_id, "amount": amount, "tenure_months": 12, "purpose": "Home repairs"}


async def me(api, who) -> dict[str, Any]:
    return (await api.client.get("/users/me", headers=who["headers"])).json()  # type: ignore[no-any-return]


async def approve(api, who, auditor) -> str:
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    kyc_id = (await checks_done(api, who))["kyc_id"]
    r = await api.client.put(f"/kyc/{kyc_id}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text
    return kyc_id  # type: ignore[no-any-return]


async def passed_challenge(api, who, challenge_id: str = "walk-live") -> str:
    await api.container.db["liveness_challenges"].insert_one(
        {"_id": challenge_id, "caller": f"user:{who['user_id']}", "passed": True})
    return challenge_id


async def test_a_basic_customer_steps_up_to_full_keeping_what_passed_and_then_borrows(api):
    who, auditor = await customer(api), await api.staff("auditor")
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})
    assert r.status_code == 201 and r.json()["level"] == "basic" and r.json()["missing"] == ["pan", "selfie"], r.text
    pan_id = (await upload(api, who, "pan", PAN)).json()["document_id"]
    assert (await selfie(api, who)).status_code == 201
    basic_id = await approve(api, who, auditor)
    mine = await me(api, who)
    assert mine["kyc_status"] == "APPROVED" and mine["kyc_level"] == "basic"
    # Loans need financial details; the product lends only to customers verified at `full`.
    await api.container.db["user"].update_one({"_id": ObjectId(who["user_id"])}, {"$set": {
        "profile": {"dob": "1990-08-15", **HOUSEHOLDS["Low"]}, "employment_details": EMPLOYMENT,
        "financial_details": {"monthly_income": 85000.0, "monthly_expenses": 20000.0, "existing_emi": 0.0,
                              "credit_score": 760}}})
    product = await make_product(api, required_kyc_level="full")
    r = await api.client.post("/loans/apply", headers=who["headers"], json=loan(product.id))
    assert r.status_code == 403 and r.json()["error_code"] == "kyc_level_required", r.text
    assert r.json()["reasons"][0] | {"message": ""} == {"code": "kyc_level_required", "message": "",
                                                        "required_level": "full", "kyc_level": "basic"}
    assert await api.container.db["loans"].count_documents({}) == 0

    # Marks on the basic case's results: a result the step-up keeps shows its mark.
    await api.container.db["kyc_doc"].update_one({"_id": ObjectId(basic_id)}, {"$set": {"checks.$[c].detail": MARK}},
                                                  array_filters=[{"c.name": {"$in": ["ocr", "name_match"]}}])
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "full"})
    assert r.status_code == 201, r.text
    step = r.json()
    assert step["kyc_id"] != basic_id and step["status"] == "OPEN" and step["level"] == "full"
    assert [d["document_id"] for d in step["documents"]] == [pan_id] and step["missing"] == [IDENTITY, "liveness"]
    assert (await me(api, who))["kyc_level"] == "basic"  # still approved at basic meanwhile
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_level_reached"

    assert (await upload(api, who, "aadhaar", AADHAAR_FRONT)).json()["kyc_id"] == step["kyc_id"]
    r = await selfie(api, who, liveness_challenge_id=await passed_challenge(api, who))
    assert r.status_code == 201 and r.json()["kyc_id"] == step["kyc_id"], r.text
    assert (await api.client.get("/kyc/me", headers=who["headers"])).json()["missing"] == []
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    assert (await me(api, who))["kyc_status"] == "APPROVED"  # under review, the customer stays approved at basic
    await checks_done(api, who)
    detail = await case_detail(api, step["kyc_id"])
    assert detail["step_up"] == {"from_case": basic_id, "from_level": "basic", "document_ids": [pan_id]}
    kept = {(c["name"], c["document_id"]): c["detail"] for c in detail["checks"]}
    assert kept[("ocr", pan_id)] == kept[("name_match", pan_id)] == MARK  # the PAN passed before: kept
    aadhaar = next(d["document_id"] for d in detail["documents"] if d["document_type"] == "aadhaar")
    assert kept[("ocr", aadhaar)] != MARK and kept[("liveness", None)] != MARK
    # The PAN is a copy of the basic case's, encrypted under the new case.
    link = next(f["url"] for f in detail["files"] if f["document_id"] == pan_id)
    image = await api.client.get(link.removeprefix("/api/v1"), headers=bearer(auditor))
    assert image.status_code == 200 and image.content == PAN

    r = await api.client.put(f"/kyc/{step['kyc_id']}/approve", headers=bearer(auditor), json={})
    assert r.status_code == 200 and r.json()["status"] == "APPROVED", r.text
    assert (await me(api, who))["kyc_level"] == "full"
    r = await api.client.post("/loans/apply", headers=who["headers"], json=loan(product.id))
    assert r.status_code == 201 and r.json()["status"] == "APPLIED", r.text
    approved = [e["data"] async for e in api.container.db["events"].find({"type": "kyc.approved",
                                                                         "user_id": who["user_id"]}).sort("_id", 1)]
    assert [(e["kyc_id"], e["level"]) for e in approved] == [(basic_id, "basic"), (step["kyc_id"], "full")]
    log = [d["details"]["level"] async for d in api.container.db["user_log"].find(
        {"user_id": who["user_id"], "action": "kyc_level_requested"}).sort("timestamp", 1)]
    assert log == ["basic", "full"]

    # Approved, then sent back to review (a watchlist reload does that) and rejected: the customer is rejected.
    case = await api.container.kyc_review.cases.get(step["kyc_id"])
    await api.container.kyc_review.cases.reopen(case.id, case.checks, assess(case.checks), api.container.clock.now())
    r = await api.client.put(f"/kyc/{case.id}/reject", headers=bearer(auditor), json={"reasons": ["suspected_fraud"]})
    assert r.status_code == 200, r.text
    mine = await me(api, who)
    assert mine["kyc_status"] == "REJECTED" and mine["kyc_level"] is None


async def test_a_rejected_step_up_leaves_the_customer_approved_at_their_level(api):
    who, auditor = await customer(api), await api.staff("auditor")
    assert (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})).status_code == 201
    await upload(api, who, "pan", PAN)
    await selfie(api, who)
    basic_id = await approve(api, who, auditor)
    step_id = (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "standard"})).json()["kyc_id"]
    await upload(api, who, "aadhaar", AADHAAR_FRONT)
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    await checks_done(api, who)
    r = await api.client.put(f"/kyc/{step_id}/reject", headers=bearer(auditor), json={"reasons": ["document_invalid"]})
    assert r.status_code == 200, r.text
    mine = await me(api, who)
    assert mine["kyc_status"] == "APPROVED" and mine["kyc_level"] == "basic"
    r = await upload(api, who, "aadhaar", AADHAAR_FRONT)  # no new case without asking for a level again
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_already_approved"
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "standard"})
    assert r.status_code == 201 and r.json()["kyc_id"] not in (basic_id, step_id), r.text
    assert [d["document_type"] for d in r.json()["documents"]] == ["pan"]  # from the approved basic case again


async def test_a_product_needs_the_highest_level_above_its_amount(api):
    product = await make_product(api, full_kyc_above=200000)
    who = await borrower(api)  # approved before levels were stored: at the default level
    assert (await me(api, who))["kyc_level"] == "standard"
    r = await api.client.post("/loans/apply", headers=who["headers"], json=loan(product.id, 300000))
    assert r.status_code == 403 and r.json()["error_code"] == "kyc_level_required"
    assert r.json()["reasons"][0]["required_level"] == "full"
    r = await api.client.post("/loans/apply", headers=who["headers"], json=loan(product.id, 150000))
    assert r.status_code == 201, r.text


async def test_levels_refuse_bad_input_and_other_roles(api):
    who = await customer(api)
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "gold"})
    assert r.status_code == 422 and r.json()["error_code"] == "kyc_level_unknown", r.text
    assert r.json()["errors"][0]["loc"] == ["body", "level"]
    for body in ({}, {"level": ""}, {"level": "full", "extra": 1}):
        r = await api.client.post("/kyc/level", headers=who["headers"], json=body)
        assert r.status_code == 422, body
    assert await api.container.db["kyc_doc"].count_documents({}) == 0
    assert (await api.client.post("/kyc/level", json={"level": "full"})).status_code == 401
    r = await api.client.post("/kyc/level", headers=bearer(await api.staff("auditor")), json={"level": "full"})
    assert r.status_code == 403
    # An open case is for the level last asked; an upload then still goes into it.
    assert (await api.client.post("/kyc/level", headers=who["headers"], json={"level": "full"})).status_code == 201
    r = await api.client.post("/kyc/level", headers=who["headers"], json={"level": "basic"})
    assert r.status_code == 201 and r.json()["level"] == "basic"
    assert await api.container.db["kyc_doc"].count_documents({}) == 1

    admin = bearer(await api.staff("admin"))
    bank = (await api.client.post("/admin/banks", headers=admin, json={"name": "Level Bank", "code": "LVL"})).json()
    terms = {"bank_id": bank["id"], "name": "Level Loan", "type": "personal", "min_amount": 50000,
             "max_amount": 500000, "min_tenure_months": 6, "max_tenure_months": 60, "annual_interest_rate": 12,
             "processing_fee_pct": 1, "prepayment_charge_pct": 2, "repayment_frequency": "monthly",
             "min_monthly_income": 25000, "min_age": 21, "max_age": 60, "max_foir": 0.5}
    r = await api.client.post("/admin/products", headers=admin, json={**terms, "required_kyc_level": "gold"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "required_kyc_level"], r.text
    r = await api.client.post("/admin/products", headers=admin, json={**terms, "full_kyc_above": -1})
    assert r.status_code == 422
    assert await api.container.db["loan_products"].count_documents({}) == 0
    r = await api.client.post("/admin/products", headers=admin,
                              json={**terms, "required_kyc_level": "standard", "full_kyc_above": 300000})
    assert r.status_code == 201, r.text
    shown = (await api.client.get(f"/loans/products/{r.json()['id']}", headers=who["headers"])).json()
    assert shown["required_kyc_level"] == "standard" and shown["full_kyc_above"] == 300000


async def test_an_approval_needs_the_checks_its_level_names_passed(api_factory):
    api = await api_factory(kyc_levels={"standard": {"checks": ["liveness"]}})
    who, auditor = await customer(api), bearer(await api.staff("auditor"))
    await upload(api, who, "aadhaar", AADHAAR_FRONT)
    await upload(api, who, "pan", PAN)
    await selfie(api, who)  # no liveness challenge: the check waits for review
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    kyc_id = (await checks_done(api, who))["kyc_id"]
    r = await api.client.put(f"/kyc/{kyc_id}/approve", headers=auditor, json={})
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_level_checks_unmet" and "liveness" in r.text
    assert (await me(api, who))["kyc_status"] == "SUBMITTED"
    r = await api.client.put(f"/kyc/{kyc_id}/reject", headers=auditor, json={"reasons": ["liveness_failed"]})
    assert r.status_code == 200  # a rejection needs nothing passed


def test_the_openapi_document_types_the_level_fields_with_examples():
    from app.main import create_app

    spec = create_app().openapi()
    schemas = spec["components"]["schemas"]
    for model, name in (("CustomerCase", "level"), ("CaseDetail", "level"), ("LevelIn", "level"),
                        ("ProductIn", "required_kyc_level"), ("ProductOut", "required_kyc_level"),
                        ("UserOut", "kyc_level"), ("StepUpOut", "from_level")):
        field = schemas[model]["properties"][name]
        types = {field.get("type")} | {t.get("type") for t in field.get("anyOf", [])}
        assert "string" in types and (field.get("examples") or "LevelIn" == model), (model, name, field)
    assert schemas["LevelIn"]["example"] == {"level": "full"}
    assert "full_kyc_above" in schemas["ProductIn"]["properties"]
    route = spec["paths"]["/api/v1/kyc/level"]["post"]
    assert {"201", "401", "403", "409", "422"} <= set(route["responses"])
    assert "kyc_level_reached" in str(route["responses"]["409"]) and "kyc_level_unknown" in str(route["responses"]["422"])
    apply = spec["paths"]["/api/v1/loans/apply"]["post"]["responses"]["403"]
    assert "kyc_level_required" in str(apply)
