"""The claims the console takes, over the API: `POST /kyc/{kyc_id}/claim` holds a case for its
auditor (no other can claim or decide it until the claim lapses), `DELETE` gives it back."""

from __future__ import annotations

from bson import ObjectId

from tests.conftest import bearer
from tests.console_cases import submitted_case


async def test_an_auditor_claims_and_releases_a_case_and_another_cannot_take_it_meanwhile(api_factory):
    api = await api_factory(job_workers=0)
    case = await submitted_case(api.container)
    claim = f"/kyc/{case['kyc_id']}/claim"
    ravi, neha = await api.staff("auditor"), await api.staff("auditor")
    r = await api.client.post(claim, headers=bearer(ravi))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kyc_id"] == case["kyc_id"] and body["held_by"] == ravi["user_id"]
    assert body["held_by_name"] == "Staff auditor" and body["held_until"].endswith("Z")
    stored = await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])})
    assert stored["claim"]["by"] == ravi["user_id"]

    r = await api.client.post(claim, headers=bearer(neha))
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_claimed"
    r = await api.client.put(f"/kyc/{case['kyc_id']}/approve", json={}, headers=bearer(neha))
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_claimed"
    r = await api.client.delete(claim, headers=bearer(neha))  # someone else's claim is left alone
    assert r.status_code == 409 and r.json()["error_code"] == "kyc_not_claimed"
    assert (await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])}))["claim"]["by"] == ravi[
        "user_id"]

    r = await api.client.delete(claim, headers=bearer(ravi))
    assert r.status_code == 200 and r.json() == {"kyc_id": case["kyc_id"], "held_by": None, "held_by_name": None,
                                                 "held_until": None}
    assert (await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])}))["claim"] is None
    assert await api.container.db["user_log"].count_documents({"action": {"$in": ["kyc_claimed", "kyc_released"]}}) == 2
    r = await api.client.post(claim, headers=bearer(neha))
    assert r.status_code == 200 and r.json()["held_by"] == neha["user_id"]


async def test_claims_are_for_reviewers_of_a_case_that_exists(api_factory):
    api = await api_factory(job_workers=0)
    case = await submitted_case(api.container)
    claim = f"/kyc/{case['kyc_id']}/claim"
    customer = await api.customer()
    for method in ("POST", "DELETE"):
        r = await api.client.request(method, claim, headers=bearer(customer))
        assert r.status_code == 403 and r.json()["error_code"] == "insufficient_role"
        assert (await api.client.request(method, claim)).status_code == 401
    auditor = await api.staff("auditor")
    r = await api.client.post("/kyc/6741f0c2a1b2c3d4e5f60719/claim", headers=bearer(auditor))
    assert r.status_code == 404
    assert (await api.container.db["kyc_doc"].find_one({"_id": ObjectId(case["kyc_id"])})).get("claim") is None


async def test_the_claim_routes_are_documented_with_their_schema(api):
    spec = (await api.client.get("http://testserver/openapi.json")).json()
    paths = {path: item for path, item in spec["paths"].items() if path.endswith("/kyc/{kyc_id}/claim")}
    [item] = paths.values()
    for method in ("post", "delete"):
        ok = item[method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/ClaimOut"}
        assert {"401", "403", "404", "409"} <= set(item[method]["responses"])
    assert set(spec["components"]["schemas"]["ClaimOut"]["properties"]) == {"kyc_id", "held_by", "held_by_name",
                                                                           "held_until"}


async def test_a_malformed_case_id_is_a_clear_4xx_and_claims_nothing(api_factory):
    api = await api_factory(job_workers=0)
    auditor = await api.staff("auditor")
    for bad in ("not-an-id", "%7B%22%24gt%22%3A%22%22%7D", "0" * 25):
        for method in ("POST", "DELETE"):
            r = await api.client.request(method, f"/kyc/{bad}/claim", headers=bearer(auditor))
            assert 400 <= r.status_code < 500 and "error_code" in r.json(), (bad, r.status_code, r.text)
    assert await api.container.db["kyc_doc"].count_documents({"claim": {"$ne": None}}) == 0
