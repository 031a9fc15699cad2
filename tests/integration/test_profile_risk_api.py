"""The profile risk assessment reads financial and employment details too, and runs again when they change."""

from __future__ import annotations

from tests.conftest import bearer, eventually

ADDRESS = {"line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"}
PROFILE = {"dob": "1990-04-12", "gender": "female", "marital_status": "married", "family_size": 4,
           "working_members": 2, "children": 1, "current_address": ADDRESS, "permanent_address": ADDRESS}


async def _assessed(api, tokens, after=None):
    async def done():
        me = (await api.client.get("/users/me", headers=bearer(tokens))).json()
        risk = me["profile_risk"]
        return risk if risk and risk["status"] == "DONE" and risk != after else None

    risk = await eventually(done)
    assert risk, "the assessment did not finish"
    return risk


async def test_details_are_scored_and_a_change_reassesses(api, email):
    tokens = await api.customer(email)
    # Details before the profile is complete: stored, nothing to assess yet.
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={
        "monthly_income": 30000, "monthly_expenses": 15000, "existing_emi": 15000, "credit_score": 640})
    assert r.status_code == 200
    assert (await api.client.get("/users/me", headers=bearer(tokens))).json()["profile_risk"] is None

    assert (await api.client.patch("/users/me", headers=bearer(tokens), json=PROFILE)).status_code == 200
    first = await _assessed(api, tokens)
    assert first["factors"]["income_per_member"] == 12 and first["factors"]["foir"] == 10
    assert first["factors"]["credit_score"] == 20 and "employment_type" not in first["factors"]
    assert first["score"] == 20 + 12 + 10 + 20 and first["level"] == "Medium"

    r = await api.client.put("/users/me/employment-details", headers=bearer(tokens), json={
        "employment_type": "business", "employer_name": "Own shop", "designation": "Owner",
        "years_in_current_job": 0.5, "total_experience_years": 1})
    assert r.status_code == 200
    second = await _assessed(api, tokens, after=first)
    assert second["factors"]["employment_type"] == 8 and second["factors"]["employment_stability"] == 15
    assert second["score"] == first["score"] + 23 and second["level"] == "High"

    # A better income and score lower it again.
    r = await api.client.put("/users/me/financial-details", headers=bearer(tokens), json={
        "monthly_income": 200000, "monthly_expenses": 50000, "existing_emi": 0, "credit_score": 790})
    third = await _assessed(api, tokens, after=second)
    assert {k: third["factors"][k] for k in ("income_per_member", "foir", "credit_score")} == {
        "income_per_member": 0, "foir": 0, "credit_score": 0}
    assert third["score"] == 20 + 23 and third["level"] == "Medium"
    jobs = await api.container.db["jobs"].count_documents({"kind": "profile_risk", "payload.user_id": tokens["user_id"]})
    assert jobs == 3
