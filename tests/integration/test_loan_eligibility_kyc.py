"""The eligibility check lists the KYC refusals applying gives: an approval that ran out (re_kyc_due) and a
level below the product's (kyc_level_required), each with the same code and message."""

from __future__ import annotations

from bson import ObjectId

from tests.integration.lending_helpers import apply_body, borrower, make_product


async def _both(api, who, product) -> tuple[dict, dict]:
    check = await api.client.post("/eligibility/check", headers=who["headers"],
                                  json={"product_id": product.id, "amount": 100000, "tenure_months": 12})
    assert check.status_code == 200, check.text
    apply = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))
    assert apply.status_code == 403, apply.text
    return check.json(), apply.json()


async def test_eligibility_reports_a_due_re_kyc_as_applying_refuses_it(api_factory):
    api = await api_factory(job_workers=0)
    who = await borrower(api)
    await api.container.db["user"].update_one({"_id": ObjectId(who["user_id"])}, {"$set": {"kyc_status": "RE_KYC_DUE"}})
    check, refused = await _both(api, who, await make_product(api))
    assert not check["eligible"] and refused["error_code"] == "re_kyc_due"
    assert [(r["code"], r["message"]) for r in check["reasons"]] == [("re_kyc_due", refused["detail"])]


async def test_eligibility_reports_a_level_below_the_products_as_applying_refuses_it(api_factory):
    api = await api_factory(job_workers=0)
    who = await borrower(api)
    check, refused = await _both(api, who, await make_product(api, required_kyc_level="full"))
    assert not check["eligible"] and refused["error_code"] == "kyc_level_required"
    assert [(r["code"], r["message"]) for r in check["reasons"]] == [("kyc_level_required", refused["detail"])]
