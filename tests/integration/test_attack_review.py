"""Defects found by probing the KYC and lending routes as an outside caller would: each test is
the request that went wrong, and what the caller must see instead."""

from __future__ import annotations

from tests.conftest import Api
from tests.integration.events_helpers import submitted_case
from tests.integration.lending_helpers import apply_body, borrower, make_product


async def test_an_emi_whose_total_overflows_the_money_range_is_a_422_not_a_500(api: Api) -> None:
    # The largest principal at 100 % over 30 years: each input is valid, the total (~3e12) is not.
    r = await api.client.post("/eligibility/calculate-emi", json={
        "principal": 99999999999.99, "annual_interest_rate": 100, "tenure_months": 360, "include_schedule": True})
    assert r.status_code == 422, r.text
    assert r.json()["error_code"] == "invalid_loan_terms" and "total payment" in r.json()["detail"]
    r = await api.client.post("/eligibility/calculate-emi", json={
        "principal": 99999999999.99, "annual_interest_rate": 0, "tenure_months": 360})
    assert r.status_code == 200 and r.json()["total_payment"] == 99999999999.99


async def test_submitting_an_already_submitted_case_again_is_409_kyc_already_submitted(api: Api) -> None:
    who = await api.customer()
    case = await submitted_case(api.container, who["user_id"], queue_checks=False)
    headers = {"Authorization": f"Bearer {who['access_token']}"}
    r = await api.client.post("/kyc/submit", headers=headers)
    # Was 422 kyc_incomplete "upload your documents and a selfie first": wrong advice to a retrying client.
    assert r.status_code == 409, r.text
    assert r.json()["error_code"] == "kyc_already_submitted"
    stored = await api.container.kyc.cases.get(case.id)
    assert stored is not None and stored.status.value == "SUBMITTED" and stored.submitted_at == case.submitted_at


async def test_a_boolean_or_text_tenure_is_refused_not_read_as_a_number_of_months(api: Api) -> None:
    product = await make_product(api)
    who = await borrower(api)
    for tenure in (True, "12", 12.5):
        r = await api.client.post("/eligibility/calculate-emi", json={
            "principal": 100000, "annual_interest_rate": 12, "tenure_months": tenure})
        assert r.status_code == 422, (tenure, r.text)  # `true` was a 1-month schedule of 101000.00
        assert r.json()["error_code"] == "validation_error"
        assert [e["loc"] for e in r.json()["errors"]] == [["body", "tenure_months"]]
        r = await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product, tenure_months=tenure))
        assert r.status_code == 422 and r.json()["error_code"] == "validation_error", r.text
    assert await api.container.db["loans"].count_documents({}) == 0
    r = await api.client.post("/eligibility/calculate-emi", json={
        "principal": 100000, "annual_interest_rate": 12, "tenure_months": 12})
    assert r.status_code == 200 and r.json()["emi"] == 8884.88
